package access

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func (s *keyStore) lookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// storedKey returns a key store holding one ingest key, an authenticator over it, and the key.
func storedKey(t *testing.T) (*keyStore, *Authenticator, string, Key) {
	t.Helper()
	ks := &keyStore{keys: map[string]Key{}}
	secret, k, err := Generate("cdp", RoleIngest, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	_ = ks.CreateKey(context.Background(), k)
	return ks, NewAuthenticator(ks, ""), secret, k
}

// When a key's entry has expired, the requests that need it at the same moment share one
// store lookup instead of each asking the store (under load, every request in flight would
// otherwise queue for the store's connections at once, every CacheTTL).
func TestExpiredKeyIsLookedUpOnceForConcurrentRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ks, a, secret, _ := storedKey(t)
		ks.set("slow")
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Go(func() {
				if _, err := a.Authenticate(context.Background(), secret); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("authenticate: %v", err)
		}
		if n := ks.lookups(); n != 1 {
			t.Fatalf("%d store lookups for 50 concurrent requests, want 1", n)
		}
	})
}

// A key in use is looked up again in the last fifth of its CacheTTL, in the background: the
// request that triggers it is not held, the entry never expires under steady traffic, and a
// revocation made on another node still takes effect within CacheTTL.
func TestKeyInUseIsRefreshedBeforeItExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ks, a, secret, k := storedKey(t)
		ctx := context.Background()
		if _, err := a.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		time.Sleep(CacheTTL / 2)
		if _, err := a.Authenticate(ctx, secret); err != nil || ks.lookups() != 1 {
			t.Fatalf("within the first part of the TTL: %v, %d lookups (want the cached entry)", err, ks.lookups())
		}

		ks.set("slow")
		time.Sleep(CacheTTL*4/5 - CacheTTL/2)
		start := time.Now()
		if _, err := a.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("the request that triggered the refresh waited %v for the store", waited)
		}
		synctest.Wait() // the background lookup is asleep in the slow store
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if n := ks.lookups(); n != 2 {
			t.Fatalf("%d lookups after the refresh point, want 2 (one refresh)", n)
		}
		// Past the first entry's expiry: the refreshed entry serves without a lookup.
		time.Sleep(CacheTTL / 2)
		start = time.Now()
		if _, err := a.Authenticate(ctx, secret); err != nil || ks.lookups() != 2 || time.Since(start) != 0 {
			t.Fatalf("after the old expiry: %v, %d lookups, waited %v; want the refreshed entry at once", err, ks.lookups(), time.Since(start))
		}

		// Revoked elsewhere: refused within CacheTTL even though the key stays in use.
		ks.set("")
		ks.mu.Lock()
		revoked := ks.keys[k.ID]
		at := time.Now()
		revoked.RevokedAt = &at
		ks.keys[k.ID] = revoked
		ks.mu.Unlock()
		deadline := time.Now().Add(CacheTTL)
		for {
			_, err := a.Authenticate(ctx, secret)
			if errors.Is(err, ErrUnauthorized) {
				break
			}
			if err != nil || time.Now().After(deadline) {
				t.Fatalf("revoked key still accepted %v after the revocation (err %v)", time.Since(at), err)
			}
			time.Sleep(100 * time.Millisecond)
			synctest.Wait()
		}
	})
}
