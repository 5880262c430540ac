package access

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// keyStore holds keys and can be told to fail or to hang until the caller gives up.
type keyStore struct {
	mu    sync.Mutex
	keys  map[string]Key
	mode  string // "", "error", "hang", "slow"
	calls int
}

func (s *keyStore) set(mode string) { s.mu.Lock(); s.mode = mode; s.mu.Unlock() }

func (s *keyStore) CreateKey(_ context.Context, k Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.ID] = k
	return nil
}

func (s *keyStore) GetKey(ctx context.Context, id string) (Key, error) {
	s.mu.Lock()
	s.calls++
	mode := s.mode
	k, ok := s.keys[id]
	s.mu.Unlock()
	switch mode {
	case "error":
		return Key{}, errors.New("connection refused")
	case "hang":
		<-ctx.Done()
		return Key{}, ctx.Err()
	case "slow": // answers after 100 ms (the bubble's clock)
		time.Sleep(100 * time.Millisecond)
	}
	if !ok {
		return Key{}, ErrNotFound
	}
	return k, nil
}

func (s *keyStore) ListKeys(context.Context) ([]Key, error)            { return nil, nil }
func (s *keyStore) RevokeKey(context.Context, string, time.Time) error { return nil }

// While the store fails or hangs, a key it confirmed lately keeps working (ingest needs Kafka,
// not the store), each lookup is bounded by LookupTimeout, the store is asked at most once a
// second per key, and past StaleGrace — or for a key never confirmed — the answer is an error
// (a 503), never a wait without bound and never an unauthorised key let in.
func TestAuthenticateSurvivesAStoreOutage(t *testing.T) {
	for _, mode := range []string{"error", "hang"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ks := &keyStore{keys: map[string]Key{}}
				a := NewAuthenticator(ks, "")
				secret, k, err := Generate("cdp", RoleIngest, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				other, ok2, _ := Generate("never-seen", RoleIngest, time.Now())
				_ = ks.CreateKey(context.Background(), k)
				_ = ks.CreateKey(context.Background(), ok2)
				ctx := context.Background()
				if _, err := a.Authenticate(ctx, secret); err != nil {
					t.Fatalf("healthy store: %v", err)
				}

				ks.set(mode)
				time.Sleep(CacheTTL + time.Millisecond) // the entry expired
				start := time.Now()
				got, err := a.Authenticate(ctx, secret)
				if err != nil || got.ID != k.ID {
					t.Fatalf("confirmed key during the outage: %v, %v", got.ID, err)
				}
				if took := time.Since(start); took > LookupTimeout {
					t.Fatalf("lookup took %v, want at most %v", took, LookupTimeout)
				}
				ks.mu.Lock()
				before := ks.calls
				ks.mu.Unlock()
				for range 50 { // within the next second: served without asking the store
					if _, err := a.Authenticate(ctx, secret); err != nil {
						t.Fatalf("stale key refused: %v", err)
					}
				}
				ks.mu.Lock()
				if ks.calls != before {
					t.Errorf("%d store lookups within a second of a stale answer, want none", ks.calls-before)
				}
				ks.mu.Unlock()
				if a.StaleServed() < 1 {
					t.Errorf("StaleServed = %d, want it counted", a.StaleServed())
				}

				// A key the store never confirmed is not let in: an error, bounded.
				start = time.Now()
				if _, err := a.Authenticate(ctx, other); err == nil || errors.Is(err, ErrUnauthorized) {
					t.Fatalf("unconfirmed key during the outage: %v, want a lookup error", err)
				}
				if took := time.Since(start); took > LookupTimeout {
					t.Fatalf("lookup took %v, want at most %v", took, LookupTimeout)
				}

				// Past the grace the confirmed key is refused too (503), not trusted forever.
				time.Sleep(StaleGrace + time.Second)
				if _, err := a.Authenticate(ctx, secret); err == nil || errors.Is(err, ErrUnauthorized) {
					t.Fatalf("key past the grace: %v, want a lookup error", err)
				}

				// The store is back: normal service.
				ks.set("")
				time.Sleep(2 * time.Second)
				if _, err := a.Authenticate(ctx, secret); err != nil {
					t.Fatalf("after the outage: %v", err)
				}
				if _, err := a.Authenticate(ctx, "qg_nope_secret"); !errors.Is(err, ErrUnauthorized) {
					t.Fatalf("unknown key after the outage: %v", err)
				}
			})
		})
	}
}
