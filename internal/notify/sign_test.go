package notify

import (
	"testing"
	"time"
)

// The Standard Webhooks reference test vector (standard-webhooks libraries, svix).
func TestSignStandardWebhooksVector(t *testing.T) {
	key, err := DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Unix(1614265330, 0)
	body := []byte(`{"test": 2432232314}`)
	got := Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", ts, body)
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	if !Verify(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, "v1,bogus "+got, ts.Add(time.Minute), 5*time.Minute) {
		t.Error("Verify refused the reference signature")
	}
	for name, tc := range map[string]struct {
		id, ts string
		body   []byte
		now    time.Time
	}{
		"other id":   {"msg_other", "1614265330", body, ts},
		"other body": {"msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 1}`), ts},
		"stale":      {"msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", body, ts.Add(10 * time.Minute)},
	} {
		if Verify(key, tc.id, tc.ts, tc.body, got, tc.now, 5*time.Minute) {
			t.Errorf("%s: Verify accepted", name)
		}
	}
}

func TestDecodeSecret(t *testing.T) {
	for _, s := range []string{"", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_c2hvcnQ="} {
		if _, err := DecodeSecret(s); err == nil {
			t.Errorf("DecodeSecret(%q) accepted", s)
		}
	}
}
