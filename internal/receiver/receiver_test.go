package receiver

import (
	"encoding/json"
	"testing"

	"github.com/qgate/qgate/internal/fault"
)

// TestAppendResponseMatchesEncodingJSON: the hand-written encoding of a verdict without errors
// is byte for byte what encoding/json (gin's c.JSON) writes; with errors it declines.
func TestAppendResponseMatchesEncodingJSON(t *testing.T) {
	for _, resp := range []*Response{
		{Results: []Result{}},
		{Accepted: 1, Results: []Result{{Index: 0, UpdateID: "019acd2e-8b7e-7c3a-9f00-000000000001", Status: StatusAccepted}}},
		{Accepted: 2, Results: []Result{
			{Index: 0, UpdateID: "019acd2e-8b7e-7c3a-9f00-000000000001", Status: StatusAccepted},
			{Index: 1, Status: StatusRejected},
			{Index: 2, UpdateID: "019acd2e-8b7e-7c3a-9f00-000000000003", Status: StatusAccepted},
		}},
	} {
		got, ok := appendResponse(nil, resp)
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || string(got) != string(want) {
			t.Errorf("appendResponse = %s, %v; encoding/json %s", got, ok, want)
		}
	}
	for _, resp := range []*Response{
		{Results: []Result{{Index: 0, Status: StatusRejected, Errors: []fault.Problem{{Path: "a", Code: "b", Message: "c"}}}}},
		{Results: []Result{{Index: 0, UpdateID: "<&>", Status: StatusAccepted}}},
	} {
		if _, ok := appendResponse(nil, resp); ok {
			t.Errorf("appendResponse encoded %+v; want a fallback to encoding/json", resp)
		}
	}
}
