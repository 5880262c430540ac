package destination

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

func newKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func TestBox(t *testing.T) {
	box, err := NewBox(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	const id, tok = "dst_1", "s3cret-token-ABCD"
	sealed, err := box.Seal(id, tok)
	if err != nil {
		t.Fatal(err)
	}
	if sealed[0] != sealVersion || len(sealed) != 1+12+len(tok)+16 {
		t.Fatalf("sealed layout: version %d, len %d", sealed[0], len(sealed))
	}
	if bytes.Contains(sealed, []byte(tok)) || bytes.Contains(sealed, []byte("ABCD")) {
		t.Fatal("plaintext visible in sealed token")
	}
	got, err := box.Open(id, sealed)
	if err != nil || got != tok {
		t.Fatalf("Open = %q, %v", got, err)
	}
	again, _ := box.Seal(id, tok)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same token are equal: nonce not random")
	}

	other, _ := NewBox(newKey(t))
	tampered := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name   string
		box    *Box
		id     string
		sealed []byte
	}{
		{"wrong destination (AAD)", box, "dst_2", sealed},
		{"wrong key", other, id, sealed},
		{"tampered version", box, id, tampered(0)},
		{"tampered nonce", box, id, tampered(3)},
		{"tampered ciphertext", box, id, tampered(15)},
		{"tampered tag", box, id, tampered(len(sealed) - 1)},
		{"truncated", box, id, sealed[:20]},
		{"empty", box, id, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.box.Open(tc.id, tc.sealed)
			if !errors.Is(err, ErrSealed) || got != "" {
				t.Fatalf("Open = %q, %v; want ErrSealed", got, err)
			}
			if strings.Contains(err.Error(), tok) {
				t.Fatal("error quotes the token")
			}
		})
	}
}

func TestNewBoxKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewBox(make([]byte, n)); err == nil {
			t.Errorf("NewBox accepted a %d-byte key", n)
		}
	}
}
