package survey

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/qgate/qgate/internal/qualtrics"
)

// Client calls the Qualtrics API v3 (GET only: qgate never writes to Qualtrics). Make one per
// process; each sync opens a session with its connection's token and request budget.
type Client struct {
	http      *http.Client
	userAgent string
	// MaxRetries is how many 429s (or 5xx) one request may meet before the sync gives up.
	MaxRetries int
	// MaxWait caps one Retry-After wait.
	MaxWait time.Duration
	// Sleep waits d or until ctx ends (tests and synctest replace nothing: time.Timer works
	// in a bubble).
	Sleep func(ctx context.Context, d time.Duration) error
}

// ClientOptions configure a Client.
type ClientOptions struct {
	Timeout   time.Duration // per request, default 120 s (the model's)
	UserAgent string
	Policy    qualtrics.HostPolicy
	Transport http.RoundTripper // tests only; nil: a transport with the policy's dial guard
}

// NewClient returns a Client whose transport enforces policy on every dial, never follows
// redirects and uses no proxy.
func NewClient(o ClientOptions) *Client {
	if o.Timeout <= 0 {
		o.Timeout = 120 * time.Second
	}
	rt := o.Transport
	if rt == nil {
		d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: o.Policy.DialControl}
		rt = &http.Transport{Proxy: nil, DialContext: d.DialContext, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 10 * time.Second, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second}
	}
	return &Client{
		http: &http.Client{Transport: rt, Timeout: o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		userAgent:  o.UserAgent,
		MaxRetries: 5,
		MaxWait:    time.Minute,
		Sleep:      sleep,
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Budget bounds the requests of one connection: at most Max per sync, paced at PerSecond
// (burst Burst). The defaults keep a sync of a few hundred surveys well inside Qualtrics'
// per-brand limits.
type Budget struct {
	Max       int
	PerSecond float64
	Burst     int
}

// DefaultBudget is the per-connection request budget.
var DefaultBudget = Budget{Max: 5000, PerSecond: 20, Burst: 20}

// APIError is a Qualtrics error answer.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("qualtrics answered %d (%s): %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("qualtrics answered %d: %s", e.Status, e.Message)
}

// ErrBudgetExhausted ends a sync that used up its request budget.
var ErrBudgetExhausted = errors.New("request budget of the connection exhausted")

// Session is one sync's (or test's) view of the API: a base URL, a token and a budget.
type Session struct {
	c       *Client
	base    *url.URL
	token   string
	budget  Budget
	limiter *rate.Limiter
	used    int
	waited  time.Duration
}

// Open starts a session against baseURL (…/API/v3/) with token.
func (c *Client) Open(baseURL, token string, b Budget) (*Session, error) {
	u, err := url.Parse(NormalizeBaseURL(baseURL))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("survey connection base URL is not a URL")
	}
	if b.Max <= 0 {
		b.Max = DefaultBudget.Max
	}
	var lim *rate.Limiter
	if b.PerSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(b.PerSecond), max(b.Burst, 1))
	}
	return &Session{c: c, base: u, token: token, budget: b, limiter: lim}, nil
}

// Requests is how many requests the session sent (retries included).
func (s *Session) Requests() int { return s.used }

// envelope is Qualtrics' answer shape.
type envelope struct {
	Result json.RawMessage `json:"result"`
	Meta   struct {
		HTTPStatus string `json:"httpStatus"`
		Error      *struct {
			ErrorMessage string `json:"errorMessage"`
			ErrorCode    string `json:"errorCode"`
		} `json:"error"`
	} `json:"meta"`
}

// get fetches one URL (relative to the base, or an absolute nextPage of the same origin) and
// returns its result, waiting out 429s within the budget.
func (s *Session) get(ctx context.Context, target *url.URL) (json.RawMessage, error) {
	if target.Scheme != s.base.Scheme || target.Host != s.base.Host {
		return nil, fmt.Errorf("qualtrics gave a page URL on another host; refused")
	}
	for attempt := 0; ; attempt++ {
		if s.used >= s.budget.Max {
			return nil, fmt.Errorf("%w (%d requests)", ErrBudgetExhausted, s.budget.Max)
		}
		if s.limiter != nil {
			if err := s.limiter.Wait(ctx); err != nil {
				return nil, err
			}
		}
		s.used++
		res, retry, err := s.once(ctx, target)
		if err == nil {
			return res, nil
		}
		if retry < 0 || attempt >= s.c.MaxRetries {
			return nil, err
		}
		if retry > s.c.MaxWait {
			retry = s.c.MaxWait
		}
		s.waited += retry
		if err := s.c.Sleep(ctx, retry); err != nil {
			return nil, err
		}
	}
}

// once sends one request. retry is how long to wait before trying again, or -1 when the
// failure is not worth retrying.
func (s *Session) once(ctx context.Context, target *url.URL) (json.RawMessage, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		return nil, -1, err
	}
	req.Header.Set("X-API-TOKEN", s.token)
	req.Header.Set("Accept", "application/json")
	if s.c.userAgent != "" {
		req.Header.Set("User-Agent", s.c.userAgent)
	}
	resp, err := s.c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, -1, context.Cause(ctx)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may carry nothing secret, but keep messages short
		}
		return nil, 2 * time.Second, fmt.Errorf("GET %s: %w", target.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, 2 * time.Second, fmt.Errorf("GET %s: read: %w", target.Path, err)
	}
	var env envelope
	_ = json.Unmarshal(body, &env)
	if resp.StatusCode == http.StatusOK {
		if len(env.Result) == 0 {
			return nil, -1, fmt.Errorf("GET %s: answer without a result", target.Path)
		}
		return env.Result, 0, nil
	}
	ae := &APIError{Status: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	if env.Meta.Error != nil {
		ae.Code, ae.Message = env.Meta.Error.ErrorCode, env.Meta.Error.ErrorMessage
	}
	err = fmt.Errorf("GET %s: %w", target.Path, ae)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, retryAfter(resp.Header.Get("Retry-After"), time.Second), err
	case resp.StatusCode >= 500:
		return nil, 2 * time.Second, err
	}
	return nil, -1, err
}

// retryAfter parses Retry-After (seconds or an HTTP date); def when absent or unreadable.
func retryAfter(v string, def time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return def
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return def
}

// path resolves an API path with a query against the base.
func (s *Session) path(p string, q url.Values) *url.URL {
	u := s.base.ResolveReference(&url.URL{Path: strings.TrimPrefix(p, "/")})
	u.RawQuery = q.Encode()
	return u
}

// Get fetches one object into out.
func (s *Session) Get(ctx context.Context, p string, q url.Values, out any) error {
	res, err := s.get(ctx, s.path(p, q))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(res, out); err != nil {
		return fmt.Errorf("GET %s: decode: %w", p, err)
	}
	return nil
}

// List fetches every page of a list, following result.nextPage, and decodes each element
// into a T.
func List[T any](ctx context.Context, s *Session, p string, q url.Values) ([]T, error) {
	var out []T
	next := s.path(p, q)
	for pages := 0; next != nil; pages++ {
		if pages > 100000 {
			return nil, fmt.Errorf("GET %s: too many pages", p)
		}
		res, err := s.get(ctx, next)
		if err != nil {
			return nil, err
		}
		var page struct {
			Elements []T     `json:"elements"`
			NextPage *string `json:"nextPage"`
		}
		if err := json.Unmarshal(res, &page); err != nil {
			return nil, fmt.Errorf("GET %s: decode: %w", p, err)
		}
		out = append(out, page.Elements...)
		next = nil
		if page.NextPage != nil && *page.NextPage != "" {
			u, err := url.Parse(*page.NextPage)
			if err != nil {
				return nil, fmt.Errorf("GET %s: nextPage is not a URL", p)
			}
			next = s.base.ResolveReference(u)
		}
	}
	return out, nil
}

// WhoAmI is the answer of GET whoami.
type WhoAmI struct {
	UserID       string `json:"userId"`
	UserName     string `json:"userName"`
	BrandID      string `json:"brandId"`
	DatacenterID string `json:"datacenterId"`
	AccountType  string `json:"accountType"`
}

// WhoAmI calls GET whoami.
func (s *Session) WhoAmI(ctx context.Context) (WhoAmI, error) {
	var w WhoAmI
	err := s.Get(ctx, "whoami", nil, &w)
	return w, err
}
