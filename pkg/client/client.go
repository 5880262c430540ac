package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultUserAgent is the User-Agent sent unless [WithUserAgent] sets another.
const DefaultUserAgent = "qgate-go-client/1"

// maxResponseBytes bounds how much of an answer is read.
const maxResponseBytes = 32 << 20

// Client calls one qgate deployment with one API key. It is safe for concurrent use.
type Client struct {
	base *url.URL
	key  string
	hc   *http.Client
	ua   string
}

// Option configures a [Client].
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc (timeouts, proxies, TLS, tracing).
// Without it, http.DefaultClient is used, which has no timeout: bound each call with its
// context. A nil hc is ignored.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.ua = ua }
}

// New returns a client for the qgate at baseURL (such as "https://qgate.example.com"; a path
// prefix is kept) that authenticates with apiKey. It fails if baseURL is not an absolute http
// or https URL.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("qgate client: base URL %q is not an absolute http(s) URL", baseURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("qgate client: the base URL must not carry credentials, a query or a fragment")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, key: apiKey, hc: http.DefaultClient, ua: DefaultUserAgent}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// String describes the client without its key.
func (c Client) String() string { return "qgate client for " + c.base.String() }

// GoString describes the client without its key (for %#v).
func (c Client) GoString() string {
	return "client.Client{base: " + strconv.Quote(c.base.String()) + "}"
}

// request is one API call.
type request struct {
	method string
	path   string // escaped, starting with /v1
	query  url.Values
	body   []byte // nil: no body
	header http.Header
}

// response is a 2xx answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends req and returns its 2xx answer, or an *APIError for any other status. The raw
// error body is given to verdicts (ingest) before it becomes an APIError.
func (c *Client) do(ctx context.Context, req request) (*response, error) {
	target := c.base.String() + req.path // req.path is already escaped
	if q := req.query.Encode(); q != "" {
		target += "?" + q
	}
	var body io.Reader
	if req.body != nil {
		body = bytes.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, target, body)
	if err != nil {
		return nil, fmt.Errorf("qgate: %s %s: %w", req.method, req.path, err)
	}
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("Authorization", "Bearer "+c.key)
	if c.ua != "" {
		hr.Header.Set("User-Agent", c.ua)
	}
	resp, err := c.hc.Do(hr)
	if err != nil {
		// *url.Error names the URL, which never holds the key (it travels in a header).
		return nil, fmt.Errorf("qgate: %s %s: %w", req.method, req.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, fmt.Errorf("qgate: %s %s: reading the answer: %w", req.method, req.path, err)
	}
	out := &response{status: resp.StatusCode, header: resp.Header, body: data}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return out, nil
	}
	apiErr := &APIError{Status: resp.StatusCode, Method: req.method, Path: req.path, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
	var eb struct {
		Errors []Problem `json:"errors"`
	}
	if json.Unmarshal(data, &eb) == nil {
		apiErr.Problems = eb.Errors
	}
	return out, apiErr
}

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// call sends a request with an optional JSON body and decodes a 2xx answer into out (if not
// nil).
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) (*response, error) {
	req := request{method: method, path: path, query: query}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("qgate: %s %s: encoding the request: %w", method, path, err)
		}
		req.body = b
	}
	return c.send(ctx, req, out)
}

func (c *Client) send(ctx context.Context, req request, out any) (*response, error) {
	resp, err := c.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			return nil, fmt.Errorf("qgate: %s %s: decoding the %d answer: %w", req.method, req.path, resp.status, err)
		}
	}
	return resp, nil
}

func seg(s string) string { return url.PathEscape(s) }

// ---- Ingest ----------------------------------------------------------------------------------

// Ingest sends profile updates (each one JSON object, as the CDP exports it): one profile is
// sent as is, several as the batch {"profiles": [...]} (1–500 profiles). Every profile gets a
// verdict in the response, in order.
//
//   - 202, at least one profile accepted: the response and a nil error. Some profiles may
//     still be rejected; check each result's Status.
//   - 422, no profile accepted: the response AND an *APIError (Status 422) whose Ingest field
//     is the same response and whose Problems are the verdicts' problems.
//   - 503: an *APIError with RetryAfter. If Kafka did not acknowledge, the verdicts are
//     returned as the response and in the error's Ingest field: profiles with status
//     "unavailable" were not queued and are safe to send again. If the node is shutting down
//     (code shutting_down) the response is nil.
//   - anything else (400, 401, 403, 413, 415, …): a nil response and an *APIError.
//
// A profile that is not valid JSON is refused before anything is sent. A single profile is
// sent byte for byte, so a lone argument that is itself {"profiles": [...]} is a batch.
func (c *Client) Ingest(ctx context.Context, profiles ...json.RawMessage) (*IngestResponse, error) {
	const path = "/v1/profiles"
	if len(profiles) == 0 {
		return nil, errors.New("qgate: POST /v1/profiles: no profile to send")
	}
	for i, p := range profiles {
		if !json.Valid(p) {
			return nil, fmt.Errorf("qgate: POST /v1/profiles: profile %d is not valid JSON", i)
		}
	}
	var body []byte
	if len(profiles) == 1 {
		body = profiles[0]
	} else {
		b, err := json.Marshal(struct {
			Profiles []json.RawMessage `json:"profiles"`
		}{profiles})
		if err != nil {
			return nil, fmt.Errorf("qgate: POST /v1/profiles: encoding the batch: %w", err)
		}
		body = b
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: path, body: body})
	var apiErr *APIError
	if err != nil && !errors.As(err, &apiErr) {
		return nil, err
	}
	if apiErr != nil && apiErr.Status != http.StatusUnprocessableEntity && apiErr.Status != http.StatusServiceUnavailable {
		return nil, apiErr
	}
	var ir IngestResponse
	if jerr := json.Unmarshal(resp.body, &ir); jerr != nil || ir.Results == nil {
		if apiErr != nil { // an error body (a 422 from validation of the request, shutting_down, …)
			return nil, apiErr
		}
		if jerr == nil {
			jerr = errors.New("no results")
		}
		return nil, fmt.Errorf("qgate: POST /v1/profiles: decoding the %d answer: %w", resp.status, jerr)
	}
	if apiErr == nil {
		return &ir, nil
	}
	apiErr.Ingest = &ir
	apiErr.Problems = nil
	for _, r := range ir.Results {
		for _, p := range r.Errors {
			if len(profiles) > 1 {
				p.Path = joinPath(fmt.Sprintf("profiles[%d]", r.Index), p.Path)
			}
			apiErr.Problems = append(apiErr.Problems, p)
		}
	}
	return &ir, apiErr
}

// joinPath roots a JSON path at prefix: ("profiles[1]", "identityMap") → "profiles[1].identityMap".
func joinPath(prefix, path string) string {
	switch {
	case path == "":
		return prefix
	case strings.HasPrefix(path, "["):
		return prefix + path
	default:
		return prefix + "." + path
	}
}

// ---- Keys (admin) ----------------------------------------------------------------------------

// CreateKey makes an API key. The answer is the only time its secret is shown.
func (c *Client) CreateKey(ctx context.Context, name string, role Role) (*CreatedKey, error) {
	var k CreatedKey
	if _, err := c.call(ctx, http.MethodPost, "/v1/keys", nil, map[string]any{"name": name, "role": role}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeys returns every stored key, newest first, revoked ones included. The bootstrap key
// (QGATE_ADMIN_KEY) is not stored and not listed.
func (c *Client) ListKeys(ctx context.Context) ([]Key, error) {
	var out struct {
		Keys []Key `json:"keys"`
	}
	if _, err := c.call(ctx, http.MethodGet, "/v1/keys", nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// RevokeKey revokes the key with the given ID (the part between "qg_" and the next "_" of its
// secret). It takes effect at once on the node that answers and within 5 s on the others. An
// unknown or already revoked key is a 404 ([IsNotFound]).
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodDelete, "/v1/keys/"+seg(id), nil, nil, nil)
	return err
}

// ---- Destinations (operator) -----------------------------------------------------------------

// CreateDestination registers a destination. qgate reports every invalid field at once
// (422, [IsInvalid]); a live destination with the same name is a 409 with code name_taken.
func (c *Client) CreateDestination(ctx context.Context, d NewDestination) (*Destination, error) {
	var out Destination
	if _, err := c.call(ctx, http.MethodPost, "/v1/destinations", nil, d, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetDestination returns a live destination; deleted or unknown ones are a 404.
func (c *Client) GetDestination(ctx context.Context, id string) (*Destination, error) {
	var out Destination
	if _, err := c.call(ctx, http.MethodGet, "/v1/destinations/"+seg(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListDestinations returns one page of live destinations in creation order. Pass the page's
// NextCursor back in opts.Cursor for the next one, or use [Client.AllDestinations].
func (c *Client) ListDestinations(ctx context.Context, opts ListOptions) (*DestinationPage, error) {
	q := url.Values{}
	if opts.Limit != 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Cursor != "" {
		q.Set("cursor", opts.Cursor)
	}
	var out struct {
		Destinations []Destination `json:"destinations"`
		NextCursor   *string       `json:"nextCursor"`
	}
	if _, err := c.call(ctx, http.MethodGet, "/v1/destinations", q, nil, &out); err != nil {
		return nil, err
	}
	return &DestinationPage{Destinations: out.Destinations, NextCursor: deref(out.NextCursor)}, nil
}

// AllDestinations iterates over every live destination, fetching pages of pageSize (0: the
// server's default) as needed. It stops at the first error, which it yields.
//
//	for d, err := range c.AllDestinations(ctx, 100) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(d.Name)
//	}
func (c *Client) AllDestinations(ctx context.Context, pageSize int) iter.Seq2[Destination, error] {
	return pages(func(cursor string) ([]Destination, string, error) {
		p, err := c.ListDestinations(ctx, ListOptions{Limit: pageSize, Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		return p.Destinations, p.NextCursor, nil
	})
}

// pages walks a cursor-paged list.
func pages[T any](fetch func(cursor string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		cursor := ""
		for {
			items, next, err := fetch(cursor)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" || next == cursor {
				return
			}
			cursor = next
		}
	}
}

// UpdateDestination changes the fields set in patch and returns the destination after the
// change. ifMatch, when not 0, is the version the change is based on (sent as If-Match): if
// the destination has moved on, the answer is a 409 with code version_conflict. A change that
// changes nothing returns the destination without a new version.
func (c *Client) UpdateDestination(ctx context.Context, id string, patch DestinationPatch, ifMatch int64) (*Destination, error) {
	b, err := json.Marshal(patch)
	if err != nil {
		return nil, fmt.Errorf("qgate: PATCH /v1/destinations/%s: encoding the request: %w", seg(id), err)
	}
	req := request{method: http.MethodPatch, path: "/v1/destinations/" + seg(id), body: b}
	if ifMatch != 0 {
		req.header = http.Header{"If-Match": {strconv.Quote(strconv.FormatInt(ifMatch, 10))}}
	}
	var out Destination
	if _, err := c.send(ctx, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteDestination deletes a destination (softly: its waiting deliveries close as excluded
// with reason destination_deleted, and its name is free at once).
func (c *Client) DeleteDestination(ctx context.Context, id string) error {
	_, err := c.call(ctx, http.MethodDelete, "/v1/destinations/"+seg(id), nil, nil, nil)
	return err
}

// PauseDestination holds delivery: updates are still routed to the destination and wait.
// Idempotent.
func (c *Client) PauseDestination(ctx context.Context, id string) (*Destination, error) {
	return c.destinationAction(ctx, id, "pause")
}

// ResumeDestination lets the waiting deliveries go out. Idempotent.
func (c *Client) ResumeDestination(ctx context.Context, id string) (*Destination, error) {
	return c.destinationAction(ctx, id, "resume")
}

func (c *Client) destinationAction(ctx context.Context, id, action string) (*Destination, error) {
	var out Destination
	if _, err := c.call(ctx, http.MethodPost, "/v1/destinations/"+seg(id)+"/"+action, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TestDestination sends one test event through the real transform and client, without
// recording a delivery, and returns what the destination said, good or bad (a refusal by the
// destination is not an error). profile is the profile to send; nil sends qgate's sample. An
// invalid profile is a 422 whose paths start at "profile".
func (c *Client) TestDestination(ctx context.Context, id string, profile json.RawMessage) (*TestResult, error) {
	var in any
	if profile != nil {
		in = struct {
			Profile json.RawMessage `json:"profile"`
		}{profile}
	}
	var out TestResult
	if _, err := c.call(ctx, http.MethodPost, "/v1/destinations/"+seg(id)+"/test", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ---- Delivery status (support) ---------------------------------------------------------------

// GetUpdate returns an update's fan-out: each delivery with its status and attempts. It is a
// 404 ([IsNotFound]) until the update has been routed, which follows ingest closely.
func (c *Client) GetUpdate(ctx context.Context, updateID string) (*UpdateView, error) {
	var out UpdateView
	if _, err := c.call(ctx, http.MethodGet, "/v1/updates/"+seg(updateID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetDelivery returns one delivery with its attempts.
func (c *Client) GetDelivery(ctx context.Context, deliveryID string) (*Delivery, error) {
	var out Delivery
	if _, err := c.call(ctx, http.MethodGet, "/v1/deliveries/"+seg(deliveryID), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SearchDeliveries returns one page of the deliveries matching every filter set in q, the most
// recently changed first. A delivery that changes between two pages may move to an earlier
// page.
func (c *Client) SearchDeliveries(ctx context.Context, q DeliveryQuery) (*DeliveryPage, error) {
	v := deliveryValues(q.DestinationID, q.Identity, q.Reason, q.Since, q.Until, q.Limit, q.Cursor)
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	return c.deliveryPage(ctx, "/v1/deliveries", v)
}

// AllDeliveries iterates over every delivery matching q (q.Cursor is the starting point),
// fetching pages as needed. It stops at the first error, which it yields.
func (c *Client) AllDeliveries(ctx context.Context, q DeliveryQuery) iter.Seq2[Delivery, error] {
	start := q.Cursor
	return pages(func(cursor string) ([]Delivery, string, error) {
		if cursor == "" {
			cursor = start
		}
		q.Cursor = cursor
		p, err := c.SearchDeliveries(ctx, q)
		if err != nil {
			return nil, "", err
		}
		return p.Deliveries, p.NextCursor, nil
	})
}

// DeadLetters returns one page of dead-lettered deliveries matching q, each ready for
// [Client.ReplayDeadLetters].
func (c *Client) DeadLetters(ctx context.Context, q DeadLetterQuery) (*DeliveryPage, error) {
	return c.deliveryPage(ctx, "/v1/dead-letters", deliveryValues(q.DestinationID, q.Identity, q.Reason, q.Since, q.Until, q.Limit, q.Cursor))
}

func deliveryValues(destID, identity, reason string, since, until time.Time, limit int, cursor string) url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("destinationId", destID)
	set("identity", identity)
	set("reason", reason)
	if !since.IsZero() {
		v.Set("since", since.UTC().Format(time.RFC3339Nano))
	}
	if !until.IsZero() {
		v.Set("until", until.UTC().Format(time.RFC3339Nano))
	}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	set("cursor", cursor)
	return v
}

func (c *Client) deliveryPage(ctx context.Context, path string, q url.Values) (*DeliveryPage, error) {
	var out struct {
		Deliveries []Delivery `json:"deliveries"`
		NextCursor *string    `json:"nextCursor"`
	}
	if _, err := c.call(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	return &DeliveryPage{Deliveries: out.Deliveries, NextCursor: deref(out.NextCursor)}, nil
}

// ReplayDeadLetters puts the selected dead letters back to pending; each is sent again with
// its stored payload and the same Idempotency-Key, with a fresh retry window. Select by
// DeliveryIDs or by Filter (one destination), not both. Deliveries that are not dead-lettered
// are left alone, so replaying twice is harmless. A dead letter whose destination already
// received a newer update of the same profile is skipped (listed in Skipped) unless req.Force.
func (c *Client) ReplayDeadLetters(ctx context.Context, req ReplayRequest) (*ReplayResult, error) {
	var out ReplayResult
	if _, err := c.call(ctx, http.MethodPost, "/v1/dead-letters/replay", nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DestinationStats returns a destination's figures over window (Window1h, Window24h or
// Window7d; "" is the server's default, 24h). It needs a support or operator key.
func (c *Client) DestinationStats(ctx context.Context, id, window string) (*DestinationStats, error) {
	return c.laneStats(ctx, "/v1/destinations/"+seg(id)+"/stats", window)
}

// ChannelStats returns a survey-watch notification channel's figures over window, in the shape
// of a destination's (DestinationID is the channel's ID): a channel is a lane of the delivery
// engine. It needs a support or operator key.
func (c *Client) ChannelStats(ctx context.Context, id, window string) (*DestinationStats, error) {
	return c.laneStats(ctx, "/v1/notification-channels/"+seg(id)+"/stats", window)
}

// laneStats GETs the figures of a lane of the delivery engine (a destination or a channel) at path.
func (c *Client) laneStats(ctx context.Context, path, window string) (*DestinationStats, error) {
	q := url.Values{}
	if window != "" {
		q.Set("window", window)
	}
	var out DestinationStats
	if _, err := c.call(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
