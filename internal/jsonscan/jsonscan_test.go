package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// checkLiteral holds ScanLiteral to encoding/json for the input b: what it reads at b[0] is a
// number, true, false or null that json.Valid accepts, and it reads every one json.Valid
// accepts on its own.
func checkLiteral(t *testing.T, b []byte) {
	t.Helper()
	end := ScanLiteral(b, 0)
	if end >= 0 && !json.Valid(b[:end]) {
		t.Fatalf("ScanLiteral(%q) = %d, json.Valid(%q) false", b, end, b[:end])
	}
	scalar := len(b) > 0 && b[0] != '"' && b[0] != '{' && b[0] != '[' && !isSpace(b[0]) && !isSpace(b[len(b)-1])
	if scalar && json.Valid(b) && end != len(b) {
		t.Fatalf("ScanLiteral(%q) = %d, json.Valid true", b, end)
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

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

func TestScanLiteral(t *testing.T) {
	for _, in := range scanCases {
		checkLiteral(t, []byte(in))
	}
	for in, want := range map[string]int{
		`1.5,`: 3, `-0.5e+10]`: 8, `0`: 1, `01`: 1, `true}`: 4, `null`: 4, `nul`: -1, `fals`: -1,
		`-`: -1, `1.`: -1, `1e`: -1, `1E+`: -1, `+1`: -1, `.1`: -1, `"x"`: -1, `[]`: -1, ``: -1,
	} {
		if got := ScanLiteral([]byte(in), 0); got != want {
			t.Errorf("ScanLiteral(%q) = %d, want %d", in, got, want)
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

// FuzzScan holds ScanLiteral, ScanString, Unquote and AppendString to encoding/json for any input.
func FuzzScan(f *testing.F) {
	for _, in := range scanCases {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkLiteral(t, b)
		checkString(t, append([]byte{'"'}, b...))
		if len(b) > 0 && b[0] == '"' {
			checkString(t, b)
		}
		checkAppend(t, string(b))
	})
}
