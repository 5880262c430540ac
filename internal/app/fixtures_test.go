package app_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qgate/qgate/internal/receiver"
)

// TestServerVerdictAgreesWithFixtures posts every profile fixture and checks that the server's
// verdict is the one its directory and name promise (the profile package checks the same
// fixtures against the JSON Schema).
func TestServerVerdictAgreesWithFixtures(t *testing.T) {
	n := startNode(t, nil)
	key := n.createKey("ingest")
	for _, verdict := range []string{"good", "bad"} {
		files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "profiles", verdict, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no %s fixtures: %v", verdict, err)
		}
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(filepath.Base(f), ".json")
			code, _, _ := strings.Cut(name, "--")
			t.Run(verdict+"/"+name, func(t *testing.T) {
				if verdict == "bad" {
					// Inside a batch, so that even a non-object gets its own verdict.
					body = []byte(`{"profiles": [` + string(body) + `]}`)
				}
				status, resp, _ := n.do("POST", "/v1/profiles", key, body)
				if verdict == "good" {
					if status != http.StatusAccepted {
						t.Fatalf("good fixture: %d %s", status, resp)
					}
					return
				}
				if code == "invalid_json" {
					// A body that is not JSON is refused as a whole.
					eb := decode[struct{ Errors []struct{ Code string } }](t, resp)
					if status != http.StatusBadRequest || eb.Errors[0].Code != receiver.CodeMalformedJSON {
						t.Fatalf("invalid JSON: %d %s", status, resp)
					}
					return
				}
				if status != http.StatusUnprocessableEntity {
					t.Fatalf("bad fixture: %d %s", status, resp)
				}
				r := decode[receiver.Response](t, resp)
				if r.Accepted != 0 || len(r.Results) != 1 || len(r.Results[0].Errors) == 0 {
					t.Fatalf("bad fixture body: %s", resp)
				}
				for _, e := range r.Results[0].Errors {
					if e.Code != code || e.Message == "" {
						t.Fatalf("bad fixture: error %+v, want code %s", e, code)
					}
				}
			})
		}
	}
}
