package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
)

// DecodeSecretKey decodes QGATE_SECRET_KEY: 32 bytes written as 64 hex characters or base64.
func DecodeSecretKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 64 {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("want 32 bytes written as 64 hex characters or base64 (e.g. openssl rand -hex 32)")
}
