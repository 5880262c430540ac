package receiver

import (
	"net/http"
	"testing"

	"github.com/qgate/qgate/internal/api"
)

// TestCheckJSONFastPathAgrees: the fast path answers exactly as api.CheckJSON does.
func TestCheckJSONFastPathAgrees(t *testing.T) {
	for _, ct := range []string{
		"application/json", "Application/JSON", "application/json; charset=utf-8", "application/json; charset=UTF-8",
		"application/json;charset=utf-8", "application/json; charset=latin1", "text/plain", "", "application/json; charset",
	} {
		r := &http.Request{Header: http.Header{"Content-Type": {ct}}}
		got, want := checkJSON(r), api.CheckJSON(r)
		if (got == nil) != (want == nil) || (got != nil && got.Error() != want.Error()) {
			t.Errorf("Content-Type %q: checkJSON %v, api.CheckJSON %v", ct, got, want)
		}
	}
}
