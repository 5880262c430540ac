package profile

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	fixtureDir = "../../testdata/profiles"
	schemaFile = "../../schemas/profile-update.schema.json"
)

// schemaExempt lists the codes a JSON Schema cannot express. Their bad fixtures are
// checked against Parse only; every other bad fixture must also be schema-invalid.
var schemaExempt = map[string]string{
	CodeInvalidJSON:       "the fixture is not JSON, so there is no instance to validate",
	CodeDuplicateKey:      "JSON decoders keep one of the duplicated keys before the schema sees the instance",
	CodeTooDeep:           "JSON Schema has no keyword bounding total nesting depth",
	CodeTooManyAttributes: "JSON Schema cannot count keys across all depths",
}

type fixture struct {
	name, code string // code is "" for good fixtures
	data       []byte
}

func loadFixtures(t testing.TB) (good, bad []fixture) {
	t.Helper()
	for _, dir := range []string{"good", "bad"} {
		paths, err := filepath.Glob(filepath.Join(fixtureDir, dir, "*.json"))
		if err != nil || len(paths) == 0 {
			t.Fatalf("no fixtures in %s/%s: %v", fixtureDir, dir, err)
		}
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f := fixture{name: dir + "/" + filepath.Base(p), data: data}
			if dir == "bad" {
				f.code, _, _ = strings.Cut(strings.TrimSuffix(filepath.Base(p), ".json"), "--")
				bad = append(bad, f)
			} else {
				good = append(good, f)
			}
		}
	}
	return good, bad
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("profile-update.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("profile-update.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// TestFixtures checks every fixture against both Parse and the JSON Schema.
func TestFixtures(t *testing.T) {
	sch := compileSchema(t)
	good, bad := loadFixtures(t)

	for _, f := range good {
		t.Run(f.name, func(t *testing.T) {
			p, errs := Parse(f.data, DefaultLimits())
			if errs != nil {
				t.Fatalf("Parse rejected a good fixture: %v", errs)
			}
			if !bytes.Equal(p.Raw, bytes.TrimSpace(f.data)) || p.Key() == "" || len(p.Memberships) == 0 {
				t.Fatalf("bad result: Raw %d bytes, Key %q, %d memberships", len(p.Raw), p.Key(), len(p.Memberships))
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(f.data))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(inst); err != nil {
				t.Fatalf("schema rejected a good fixture: %v", err)
			}
		})
	}

	covered := map[string]bool{}
	for _, f := range bad {
		t.Run(f.name, func(t *testing.T) {
			if !slices.Contains(Codes, f.code) {
				t.Fatalf("file name prefix %q is not an error code", f.code)
			}
			covered[f.code] = true
			p, errs := Parse(f.data, DefaultLimits())
			if p != nil || len(errs) == 0 {
				t.Fatal("Parse accepted a bad fixture")
			}
			for _, e := range errs {
				if e.Code != f.code {
					t.Errorf("Parse reported %v; want only %s", e, f.code)
				}
			}
			if why, ok := schemaExempt[f.code]; ok {
				t.Logf("schema check exempt: %s", why)
				return
			}
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(f.data))
			if err != nil {
				t.Fatalf("fixture is not JSON: %v", err)
			}
			if err := sch.Validate(inst); err == nil {
				t.Fatal("schema accepted a bad fixture")
			}
		})
	}
	for _, c := range Codes {
		if !covered[c] {
			t.Errorf("no bad fixture for code %s", c)
		}
	}
}
