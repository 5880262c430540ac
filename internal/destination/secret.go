package destination

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// Box encrypts destination API tokens at rest with AES-256-GCM.
//
// A sealed token is: one version byte (which key generation sealed it, so keys can rotate
// later), a random 12-byte nonce, then the ciphertext with its 16-byte tag. The additional
// authenticated data binds the ciphertext to its destination ID and the version byte, so a
// sealed token copied onto another row, or relabelled with another version, does not open.
type Box struct {
	aead cipher.AEAD
}

// sealVersion is the format and key generation this Box writes.
const sealVersion byte = 1

// ErrSealed is wrapped by every failure to open a sealed token: tampered, moved to another
// destination, sealed with another key, or in an unknown format.
var ErrSealed = errors.New("sealed token cannot be opened")

// NewBox returns a Box for a 32-byte key (QGATE_SECRET_KEY).
func NewBox(key []byte) (*Box, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("secret box: key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret box: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret box: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts the token of destination id.
func (b *Box) Seal(id, plaintext string) ([]byte, error) {
	ns := b.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+b.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1 : 1+ns]); err != nil {
		return nil, fmt.Errorf("seal token: %w", err)
	}
	return b.aead.Seal(out, out[1:1+ns], []byte(plaintext), aad(sealVersion, id)), nil
}

// Open decrypts a token sealed for destination id.
func (b *Box) Open(id string, sealed []byte) (string, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() {
		return "", fmt.Errorf("%w: too short", ErrSealed)
	}
	if sealed[0] != sealVersion {
		return "", fmt.Errorf("%w: unknown version %d", ErrSealed, sealed[0])
	}
	pt, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], aad(sealed[0], id))
	if err != nil {
		return "", fmt.Errorf("%w: wrong key, wrong destination or tampered", ErrSealed)
	}
	return string(pt), nil
}

func aad(version byte, id string) []byte {
	return append([]byte{'q', 'g', 't', version}, id...)
}
