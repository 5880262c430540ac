package jsonscan

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// depth is how deep the valid JSON b nests.
func depth(b []byte) int {
	d, most, inString := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			most = max(most, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return most
}

// checkScan holds ScanValue to encoding/json for the input b: it accepts what json.Valid
// accepts unless it nests deeper than MaxDepth, and in compact mode exactly the values
// json.Marshal writes as they are in a json.RawMessage.
func checkScan(t *testing.T, b []byte) {
	t.Helper()
	valid := json.Valid(b)
	end := ScanValue(b, SkipSpace(b, 0), false)
	if got := end >= 0 && SkipSpace(b, end) == len(b); got != valid && (got || depth(b) <= MaxDepth) {
		t.Fatalf("ScanValue(%q) = %d, json.Valid %v", b, end, valid)
	}
	compact := false
	if valid {
		m, err := json.Marshal(json.RawMessage(b))
		compact = err == nil && bytes.Equal(m, b)
	}
	end = ScanValue(b, 0, true)
	if got := end == len(b); got != compact && (got || depth(b) <= MaxDepth) {
		t.Fatalf("ScanValue(%q, compact) = %d, as json.Marshal writes it: %v", b, end, compact)
	}
}

// checkString holds ScanString and Unquote to encoding/json for the input b, which starts
// with a quote.
func checkString(t *testing.T, b []byte) {
	t.Helper()
	end, f := ScanString(b, 0)
	var v string
	if end < 0 {
		if err := json.Unmarshal(b, &v); err == nil {
			t.Fatalf("ScanString(%q) = -1, json.Unmarshal reads %q", b, v)
		}
		return
	}
	if err := json.Unmarshal(b[:end], &v); err != nil {
		t.Fatalf("ScanString(%q) = %d, json.Unmarshal: %v", b, end, err)
	}
	raw := b[1 : end-1]
	if u := Unquote(nil, raw); string(u) != v {
		t.Fatalf("Unquote(%q) = %q, json.Unmarshal %q", raw, u, v)
	}
	if same := f&(Escaped|InvalidUTF8) == 0; same != (v == string(raw)) {
		t.Fatalf("ScanString(%q) flags %b, value %q", b, f, v)
	}
	if escaped := f&Escaped != 0; escaped != bytes.ContainsRune(raw, '\\') {
		t.Fatalf("ScanString(%q) flags %b", b, f)
	}
	html := bytes.ContainsAny(raw, "<>&\u2028\u2029")
	if f&HTMLUnsafe != 0 != html {
		t.Fatalf("ScanString(%q) flags %b", b, f)
	}
	if m, _ := json.Marshal(v); f == 0 && !bytes.Equal(m, b[:end]) {
		t.Fatalf("ScanString(%q) flags 0, json.Marshal writes %s", b, m)
	}
}

// checkAppend holds AppendString to json.Marshal for s.
func checkAppend(t *testing.T, s string) {
	t.Helper()
	want, _ := json.Marshal(s)
	if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
		t.Fatalf("AppendString(%q) = %s, json.Marshal %s", s, got, want)
	}
	if got := AppendString(nil, []byte(s)); string(got) != string(want) {
		t.Fatalf("AppendString([]byte(%q)) = %s, json.Marshal %s", s, got, want)
	}
}

func deep(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

var scanCases = []string{
	`{}`, `[]`, `{"a":1}`, `[1,"a",true,false,null,{},[]]`, ` { "a" : [ 1 , 2 ] } `, "{\"a\":\n1}",
	`{"a":{"b":{"c":[{"d":null}]}}}`, `"x"`, `0`, `-0`, `-0.5e+10`, `1E400`, `12.5E-3`, `true`,
	`"<>&"`, `"\u003c"`, "\"\u2028\u2029\"", "\"\xff\"", "\"\xe2\x80\"", "\"\xe2\xe2\x80\xa8\"",
	`"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"`, `{"<":1}`, `[01]`, `[1.]`, `[.1]`, `[1e]`, `[1E+]`,
	`[+1]`, `[-]`, `[-01]`, `[tru]`, `[nulll]`, `[fals]`, `{"a":}`, `{"a" 1}`, `{1:1}`, `[1,]`,
	`{"a":1,}`, `{"a":1`, `[`, `{`, `"\x"`, `"\u12"`, `"\u12G4"`, `"abc`, "\"a\x01\"", `{} {}`,
	`{}x`, ``, ` `, `nul`, deep(MaxDepth), deep(MaxDepth + 1), deep(10001),
	`{"a":` + deep(MaxDepth) + `}`,
}

func TestScanValue(t *testing.T) {
	for _, in := range scanCases {
		checkScan(t, []byte(in))
	}
	for in, want := range map[string]int{
		`{"a":[1,2]} x`: 11, `1.5,`: 3, `"a"b`: 3, `[1 ,2]`: 6, `{"a":1}`: 7, `[01]`: -1,
		deep(MaxDepth): 2 * MaxDepth, deep(MaxDepth + 1): -1,
	} {
		if got := ScanValue([]byte(in), 0, false); got != want {
			t.Errorf("ScanValue(%q) = %d, want %d", in, got, want)
		}
	}
	for in, want := range map[string]int{`[1,2]`: 5, `[1 ,2]`: -1, `{"a" :1}`: -1, `["<"]`: -1, "[\"\u2029\"]": -1, "[\"\xff\"]": 5} {
		if got := ScanValue([]byte(in), 0, true); got != want {
			t.Errorf("ScanValue(%q, compact) = %d, want %d", in, got, want)
		}
	}
}

func TestScanString(t *testing.T) {
	for in, want := range map[string]StringFlags{
		`"plain ASCII"`: 0, `""`: 0, `"é😀"`: 0, `"a\nb"`: Escaped, `"\u0041"`: Escaped,
		`"<b>"`: HTMLUnsafe, "\"\u2028\"": HTMLUnsafe, "\"\xff\"": InvalidUTF8,
		"\"\\\\<\xed\xa0\x80\"": Escaped | HTMLUnsafe | InvalidUTF8,
	} {
		if end, f := ScanString([]byte(in+"rest"), 0); end != len(in) || f != want {
			t.Errorf("ScanString(%q) = %d, %b; want %d, %b", in, end, f, len(in), want)
		}
	}
	for _, in := range scanCases {
		if strings.HasPrefix(in, `"`) {
			checkString(t, []byte(in))
		}
	}
	for _, in := range []string{`"\ud800"`, `"\ud800\u0041"`, `"\ud800\\u0041"`, `"\udc00\ud800"`, `"\ud800\udc00"`,
		`"\uDBFF\uDFFF"`, `"\ud800x"`, `"\uFFFF"`, `"\u0000\u001f"`} {
		checkString(t, []byte(in))
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "\"\\/", "\b\f\n\r\t\x00\x01\x1f\x7f", "<script>&amp;</script>",
		"é€😀", "\u2028\u2029", "a\xffb\xc3\x28\xe2\x80\xed\xa0\x80z", "\xef\xbf\xbd", "\xf4\x90\x80\x80", "x\xe2"} {
		checkAppend(t, s)
	}
}

// A record with a member of each kind Decode reads.
type record struct {
	V   int             `json:"v"`
	S   string          `json:"s"`
	T   string          `json:"t"`
	At  time.Time       `json:"at"`
	Raw json.RawMessage `json:"raw"`
}

func decodeRecord(b []byte) (record, bool) {
	var r record
	ok := Decode(b, []Field{{Name: "v", Int: &r.V}, {Name: "s", String: &r.S}, {Name: "t", String: &r.T},
		{Name: "at", Time: &r.At}, {Name: "raw", Raw: &r.Raw}})
	return r, ok
}

// checkDecode holds Decode to json.Unmarshal where it answers.
func checkDecode(t *testing.T, b []byte) bool {
	t.Helper()
	got, ok := decodeRecord(b)
	if !ok {
		return false
	}
	var want record
	if err := json.Unmarshal(b, &want); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q)\n got %#v\nwant %#v, %v", b, got, want, err)
	}
	return true
}

var decodeCases = map[string]bool{
	`{"v":1,"s":"a","t":"b","at":"2026-11-22T10:00:00.5+01:00","raw":{"x":[1]}}`: true,
	` {"raw" : null , "t":"", "v":-12} `:                                         true,
	`{}`:                                                                         true,
	`{"s":"a","s":"b"}`:                                                          false, // the last wins in encoding/json
	`{"S":"a"}`:                                                                  false, // matched without regard to case
	`{"other":1}`:                                                                false, // skipped
	`{"s":"\u0041"}`:                                                             false,
	`{"s":"é"}`:                                                                  false,
	`{"s":null}`:                                                                 false,
	`{"v":1.0}`:                                                                  false,
	`{"v":1234567890}`:                                                           false,
	`{"v":01}`:                                                                   false,
	`{"at":"2026-11-22"}`:                                                        false,
	`{"raw":[1,]}`:                                                               false,
	`{"raw":` + deep(MaxDepth+1) + `}`:                                           false,
	`{"v":1}x`:                                                                   false,
	`{"v":1,}`:                                                                   false,
	`[]`:                                                                         false,
	``:                                                                           false,
}

func TestDecode(t *testing.T) {
	for in, want := range decodeCases {
		if got := checkDecode(t, []byte(in)); got != want {
			t.Errorf("Decode(%q) = %v, want %v", in, got, want)
		}
	}
	// One allocation for all the strings; none for the fields.
	in := []byte(`{"v":1,"s":"abc","t":"def"}`)
	if n := testing.AllocsPerRun(100, func() { decodeRecord(in) }); n != 1 {
		t.Errorf("Decode: %v allocations, want 1", n)
	}
}

// FuzzScan holds ScanValue, ScanString, Unquote and AppendString to encoding/json for any input.
func FuzzScan(f *testing.F) {
	for _, in := range scanCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkScan(t, b)
		checkString(t, append([]byte{'"'}, b...))
		if len(b) > 0 && b[0] == '"' {
			checkString(t, b)
		}
		checkAppend(t, string(b))
	})
}

// FuzzDecode holds Decode to json.Unmarshal for any input.
func FuzzDecode(f *testing.F) {
	for in := range decodeCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}
