package notify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks signing (https://www.standardwebhooks.com): the signed content is
// "{webhook-id}.{webhook-timestamp}.{body}", the key the base64-decoded part of the
// "whsec_<base64>" secret, the signature "v1,<base64 HMAC-SHA256>".

// SecretPrefix starts every webhook secret.
const SecretPrefix = "whsec_"

// Secret key sizes accepted (the spec recommends 24 to 64 bytes).
const (
	MinSecretBytes = 24
	MaxSecretBytes = 64
)

// ErrSecret is returned for a secret that is not whsec_<base64> of 24 to 64 bytes.
var ErrSecret = errors.New("secret must be whsec_ followed by the base64 of 24 to 64 random bytes")

// DecodeSecret returns the key of a whsec_ secret.
func DecodeSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, ErrSecret
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, ErrSecret
	}
	if len(key) < MinSecretBytes || len(key) > MaxSecretBytes {
		return nil, ErrSecret
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks a received webhook the way a receiver should: one of the space-separated v1
// signatures matches and the timestamp is within tolerance of now.
func Verify(key []byte, id, timestamp string, body []byte, signatures string, now time.Time, tolerance time.Duration) bool {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	ts := time.Unix(sec, 0)
	if ts.Before(now.Add(-tolerance)) || ts.After(now.Add(tolerance)) {
		return false
	}
	want := Sign(key, id, ts, body)
	for _, s := range strings.Fields(signatures) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return true
		}
	}
	return false
}
