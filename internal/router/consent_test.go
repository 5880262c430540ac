package router

import (
	"testing"

	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/profile"
)

func TestConsentsGranted(t *testing.T) {
	const consents = `{"consents":{"collect":{"val":"y"},"marketing":{"any":{"val":"dy"},"email":{"val":"n"},"sms":{"val":1},"push":{}},` +
		`"k\u00e9y":{"val":"y"}},"other":[1,2]}`
	cases := []struct {
		raw     string
		require []string
		want    bool
	}{
		{consents, nil, true},
		{consents, []string{"collect"}, true},
		{consents, []string{"collect", "marketing.any"}, true},
		{consents, []string{"kéy"}, true}, // escapes in keys resolved
		{consents, []string{"collect", "marketing.email"}, false},
		{consents, []string{"marketing.sms"}, false},  // not a string
		{consents, []string{"marketing.push"}, false}, // no val
		{consents, []string{"marketing.none"}, false},
		{consents, []string{"marketing"}, false},
		{`{"other":{"collect":{"val":"y"}}}`, []string{"collect"}, false}, // no consents object
		{`{"consents":"y"}`, []string{"collect"}, false},
		{`{"consents":{"collect":{"val":"y"}}`, []string{"collect"}, false}, // not JSON: nothing granted
	}
	for _, tc := range cases {
		c := newConsents(&profile.Profile{Raw: []byte(tc.raw)})
		if got := c.granted(destination.ConsentPolicy{Require: tc.require}); got != tc.want {
			t.Errorf("granted(%s, %q) = %v, want %v", tc.raw, tc.require, got, tc.want)
		}
	}
}
