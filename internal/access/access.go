// Package access owns API keys and roles: key generation, hashing, authentication of bearer
// tokens, and the admin API for keys. Keys are stored only as SHA-256 hashes.
package access

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/qgate/qgate/internal/fault"
)

// Role is what a key may do.
type Role string

// The roles of BRIEF §7. Admin may do everything.
const (
	RoleIngest   Role = "ingest"
	RoleOperator Role = "operator"
	RoleSupport  Role = "support"
	RoleAdmin    Role = "admin"
)

// Roles lists every role, for validation and docs.
var Roles = []Role{RoleIngest, RoleOperator, RoleSupport, RoleAdmin}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, k := range Roles {
		if r == k {
			return true
		}
	}
	return false
}

// Allows reports whether a key with role r may act as want.
func (r Role) Allows(want Role) bool { return r == want || r == RoleAdmin }

// Key is a stored API key: never the secret itself.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	Hash      []byte     `json:"-"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// Errors of this package.
var (
	ErrNotFound     = fault.New(fault.NotFound, "id", "key_not_found", "no such API key")
	ErrUnauthorized = errors.New("missing or invalid API key")
)

// Store is what access needs from persistence.
type Store interface {
	CreateKey(ctx context.Context, k Key) error
	GetKey(ctx context.Context, id string) (Key, error) // ErrNotFound when absent
	ListKeys(ctx context.Context) ([]Key, error)
	RevokeKey(ctx context.Context, id string, at time.Time) error // ErrNotFound when absent or revoked
}

const keyPrefix = "qg_"

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Generate makes a new key secret and its stored form. The secret is "qg_<id>_<random>" and is
// shown to the caller once.
func Generate(name string, role Role, now time.Time) (secret string, k Key, err error) {
	if !role.Valid() {
		return "", Key{}, fmt.Errorf("unknown role %q", role)
	}
	var idb [8]byte
	var sb [32]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return "", Key{}, err
	}
	if _, err := rand.Read(sb[:]); err != nil {
		return "", Key{}, err
	}
	id := b32.EncodeToString(idb[:])
	secret = keyPrefix + id + "_" + b32.EncodeToString(sb[:])
	return secret, Key{ID: id, Name: name, Role: role, Hash: hash(secret), CreatedAt: now.UTC().Truncate(time.Millisecond)}, nil // stored in ms
}

func hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// ParseID returns the key ID embedded in a secret.
func ParseID(secret string) (string, bool) {
	rest, ok := strings.CutPrefix(secret, keyPrefix)
	if !ok {
		return "", false
	}
	id, _, ok := strings.Cut(rest, "_")
	return id, ok && id != ""
}

// Authenticator resolves bearer secrets to keys. Stored keys are cached briefly so the ingest
// path does not hit the store per request; a revocation made through this node takes effect at
// once, one made on another node within CacheTTL.
type Authenticator struct {
	store    Store
	adminKey string // bootstrap key from QGATE_ADMIN_KEY; empty: none
	ttl      time.Duration
	now      func() time.Time

	mu    sync.RWMutex
	cache map[string]cached
	// lookups shares one store lookup among the requests that need the same key at once (an
	// entry expiring under load would otherwise send every request in flight to the store).
	lookups    singleflight.Group
	forgets    atomic.Int64 // Forget calls: a lookup that began before one does not cache its answer
	refreshing sync.Map     // key IDs with a refresh-ahead lookup in flight (one goroutine per key)

	staleServed atomic.Int64 // lookups answered from an expired entry while the store failed
}

type cached struct {
	key       Key
	missing   bool
	expires   time.Time
	confirmed time.Time // when the store last returned the key
	// refreshAt: a key in use is looked up again in the background from then on (the last
	// fifth of its CacheTTL), so under steady traffic it never expires and no request waits
	// for the store. Zero for entries that are not a fresh confirmation (missing, stale).
	refreshAt time.Time
}

// staleRetry spaces the store lookups of a key served stale.
const staleRetry = time.Second

// CacheTTL bounds how long a key lookup is reused.
const CacheTTL = 5 * time.Second

// LookupTimeout bounds one key lookup in the store: a store that does not answer gets a 503
// instead of holding the request.
const LookupTimeout = 2 * time.Second

// StaleGrace is how long past its CacheTTL a key the store confirmed is still accepted while
// the store cannot be reached (a revocation made on another node meanwhile waits that long).
const StaleGrace = 15 * time.Minute

// NewAuthenticator returns an authenticator over store with an optional bootstrap admin key.
func NewAuthenticator(store Store, adminKey string) *Authenticator {
	return &Authenticator{store: store, adminKey: adminKey, ttl: CacheTTL, now: time.Now, cache: map[string]cached{}}
}

// BootstrapID is the ID reported for the bootstrap admin key.
const BootstrapID = "bootstrap"

// Authenticate returns the key for secret, or ErrUnauthorized.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (Key, error) {
	if secret == "" {
		return Key{}, ErrUnauthorized
	}
	if a.adminKey != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(a.adminKey)) == 1 {
		return Key{ID: BootstrapID, Name: "bootstrap admin (QGATE_ADMIN_KEY)", Role: RoleAdmin}, nil
	}
	id, ok := ParseID(secret)
	if !ok {
		return Key{}, ErrUnauthorized
	}
	now := a.now()
	a.mu.RLock()
	c, hit := a.cache[id]
	a.mu.RUnlock()
	switch {
	case !hit || now.After(c.expires):
		// Shared by every request waiting for this key, so not ended by the first one's context.
		v, err, _ := a.lookups.Do(id, func() (any, error) { return a.lookup(context.WithoutCancel(ctx), id) })
		if err != nil {
			return Key{}, err
		}
		c = v.(cached)
	case !c.refreshAt.IsZero() && !now.Before(c.refreshAt):
		// Refreshed ahead of expiry, once, off the request's path; the request goes on with
		// the entry, which is still within its CacheTTL.
		if _, busy := a.refreshing.LoadOrStore(id, struct{}{}); !busy {
			go func() {
				defer a.refreshing.Delete(id)
				_, _, _ = a.lookups.Do(id, func() (any, error) { return a.lookup(context.WithoutCancel(ctx), id) })
			}()
		}
	}
	if c.missing || c.key.RevokedAt != nil || subtle.ConstantTimeCompare(hash(secret), c.key.Hash) != 1 {
		return Key{}, ErrUnauthorized
	}
	return c.key, nil
}

// lookup asks the store for key id, bounded by LookupTimeout, and caches the answer: the key, its
// absence, or — when the store does not answer — the entry it confirmed lately, served stale
// for a while (see StaleGrace).
func (a *Authenticator) lookup(ctx context.Context, id string) (cached, error) {
	now := a.now()
	forgets := a.forgets.Load()
	a.mu.RLock()
	c, hit := a.cache[id]
	a.mu.RUnlock()
	lctx, cancel := context.WithTimeout(ctx, LookupTimeout)
	k, err := a.store.GetKey(lctx, id)
	cancel()
	switch {
	case errors.Is(err, ErrNotFound):
		c = cached{missing: true, expires: now.Add(a.ttl)}
	case err != nil && hit && !c.missing && now.Sub(c.confirmed) < a.ttl+StaleGrace:
		// The store does not answer: a key it confirmed lately keeps working for a while,
		// so ingest (which needs Kafka, not the store) survives a store outage. The store
		// is asked again at most once a second per key meanwhile.
		if now.After(c.expires) { // a refresh ahead of expiry that failed serves nothing stale yet
			a.staleServed.Add(1)
		}
		c.expires = a.now().Add(staleRetry) // after the lookup, which may have taken its timeout
		c.refreshAt = time.Time{}
	case err != nil:
		return cached{}, fmt.Errorf("look up key: %w", err)
	default:
		c = cached{key: k, expires: now.Add(a.ttl), confirmed: now, refreshAt: now.Add(a.ttl - a.ttl/5)}
	}
	a.mu.Lock()
	if len(a.cache) > 10000 {
		clear(a.cache)
	}
	if a.forgets.Load() == forgets { // else a revocation on this node came during the lookup
		a.cache[id] = c
	}
	a.mu.Unlock()
	return c, nil
}

// StaleServed counts requests authenticated from an expired cache entry because the store did
// not answer.
func (a *Authenticator) StaleServed() int64 { return a.staleServed.Load() }

// Forget drops a key from the cache (after a revocation on this node).
func (a *Authenticator) Forget(id string) {
	a.mu.Lock()
	a.forgets.Add(1)
	delete(a.cache, id)
	a.mu.Unlock()
}
