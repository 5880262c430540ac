package simulator

import (
	"bytes"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Auth forms recorded in Run.Auth.
const (
	AuthBasic = "basic"
	AuthToken = "token"
)

// credentials are what a call presented.
type credentials struct {
	form     string // AuthBasic, AuthToken or "" when none usable
	username string
	token    string
}

// readCredentials takes X-API-TOKEN when present, else Authorization: Basic.
// Any other Authorization scheme (Bearer, OAuth) yields no credentials.
func readCredentials(r *http.Request) credentials {
	if tok := r.Header.Get("X-API-TOKEN"); tok != "" {
		return credentials{form: AuthToken, token: tok}
	}
	scheme, value, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return credentials{}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		return credentials{}
	}
	user, tok, ok := strings.Cut(string(raw), ":")
	if !ok {
		return credentials{}
	}
	return credentials{form: AuthBasic, username: user, token: tok}
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// matches reports whether c authenticates against wf.
func (c credentials) matches(wf Workflow) bool {
	switch c.form {
	case AuthToken:
		return wf.Token != "" && equal(c.token, wf.Token)
	case AuthBasic:
		return wf.Token != "" && equal(c.username, wf.Username) && equal(c.token, wf.Token)
	}
	return false
}

// eventResult is the body of a successful JSON-event call. Qualtrics' real
// body is unconfirmed.
type eventResult struct {
	WorkflowID string `json:"workflowId"`
	Status     string `json:"status"`
}

// reply is the answer decided for a call.
type reply struct {
	status     int
	retryAfter string
	body       []byte
	hostile    *Hostile // answer as a hostile destination instead
}

// handleEvent serves POST /events/{workflowId}[/anything][?query]. The
// checks run in order: workflow (404), hang, auth (401), method (405),
// content type (415), size (413), JSON (400), rate (429), script, hostile.
func (s *Simulator) handleEvent(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/events/")
	id, _, _ := strings.Cut(rest, "/")
	wf := s.lookup(id)
	if id == "" || wf == nil {
		s.rejected.Add(1)
		writeError(w, http.StatusNotFound, fmt.Sprintf("workflow %q not found", id))
		return
	}

	if !s.waitHang(w, r, wf) {
		return
	}

	creds := readCredentials(r)
	wf.mu.Lock()
	cfg, forced, latency := wf.cfg, wf.unauthorized, wf.latency
	authorized := !forced && creds.matches(cfg)
	if !authorized {
		wf.stats.Unauthorized++
	}
	wf.mu.Unlock()
	if !authorized {
		s.rejected.Add(1)
		msg := "Invalid API token or credentials: use X-API-TOKEN or Authorization: Basic base64(username:apiToken)"
		s.respond(w, r, latency, reply{status: http.StatusUnauthorized,
			body: errorEnvelope(http.StatusUnauthorized, newRequestID(), msg)}, "")
		return
	}

	run := Run{
		Time:           s.cfg.Now(),
		RequestID:      newRequestID(),
		Auth:           creds.form,
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		UserAgent:      r.Header.Get("User-Agent"),
		ContentType:    r.Header.Get("Content-Type"),
		Method:         r.Method,
		Path:           r.URL.Path,
		Query:          r.URL.RawQuery,
	}
	rep, delay := s.decide(r, wf, cfg.ID, creds, &run)
	run.Status = rep.status
	run.Outcome = OutcomeFailed
	if rep.status >= 200 && rep.status < 300 && (rep.hostile == nil || rep.hostile.completes()) {
		run.Outcome = OutcomeSuccessful
	}

	wf.mu.Lock()
	if rep.status == http.StatusTooManyRequests && !run.Scripted {
		wf.stats.RateLimited++
	}
	wf.record(run, s.cfg.MaxRuns)
	latency = wf.latency
	wf.mu.Unlock()

	s.respond(w, r, latency+delay, rep, run.RequestID)
}

// waitHang holds the call while the workflow hangs. It reports whether to
// go on; on simulator close it aborts the connection.
func (s *Simulator) waitHang(w http.ResponseWriter, r *http.Request, wf *workflow) bool {
	wf.mu.Lock()
	if !wf.hang {
		wf.mu.Unlock()
		return true
	}
	wf.stats.Hung++
	release := wf.hangRelease
	wf.mu.Unlock()
	select {
	case <-release:
		return true
	case <-r.Context().Done():
		return false
	case <-s.done:
		panic(http.ErrAbortHandler)
	}
}

// decide runs the checks after authentication and returns the reply and
// any scripted delay. It fills run.Body, run.Error and run.Scripted.
func (s *Simulator) decide(r *http.Request, wf *workflow, id string, creds credentials, run *Run) (reply, time.Duration) {
	fail := func(status int, msg string) reply {
		run.Error = msg
		return reply{status: status, body: errorEnvelope(status, run.RequestID, msg)}
	}
	if r.Method != http.MethodPost {
		return fail(http.StatusMethodNotAllowed, "method "+r.Method+" not allowed: JSON events accept POST only"), 0
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fail(http.StatusUnsupportedMediaType, "Content-Type must be application/json"), 0
	}
	body, err := s.readBody(r)
	if errors.Is(err, errTooLarge) {
		return fail(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("payload exceeds %d bytes", s.cfg.MaxBodyBytes)), 0
	}
	if err != nil {
		return fail(http.StatusBadRequest, "read body: "+err.Error()), 0
	}
	if !json.Valid(body) {
		return fail(http.StatusBadRequest, "body is not valid JSON"), 0
	}
	if *s.cfg.KeepBodies {
		run.Body = bytes.Clone(body) // exact size: the read buffer has slack
	}

	if ok, wait := s.admit(wf, creds.token, run.Time); !ok {
		rep := fail(http.StatusTooManyRequests, "rate limit exceeded")
		rep.retryAfter = strconv.Itoa(retryAfterSeconds(wait))
		return rep, 0
	}

	step, ok := wf.pop(run.IdempotencyKey)
	if ok && step.Status != 0 {
		run.Scripted = true
		rep := reply{status: step.Status, retryAfter: step.RetryAfter, body: []byte(step.Body)}
		if step.Status < 200 || step.Status >= 300 {
			run.Error = "scripted status " + strconv.Itoa(step.Status)
		}
		if step.Body == "" {
			rep.body = scriptedBody(step.Status, run.RequestID, id)
		}
		return rep, step.Delay
	}
	wf.mu.Lock()
	h := wf.hostile
	wf.mu.Unlock()
	if h.Mode != "" {
		run.Error = "hostile " + h.Mode
		return reply{status: h.Status, hostile: &h}, step.Delay
	}
	res, _ := json.Marshal(envelope{
		Result: eventResult{WorkflowID: id, Status: "triggered"},
		Meta:   meta{HTTPStatus: httpStatusText(http.StatusOK), RequestID: run.RequestID},
	})
	return reply{status: http.StatusOK, body: res}, step.Delay
}

func scriptedBody(status int, requestID, workflowID string) []byte {
	if status >= 200 && status < 300 {
		b, _ := json.Marshal(envelope{
			Result: eventResult{WorkflowID: workflowID, Status: "triggered"},
			Meta:   meta{HTTPStatus: httpStatusText(status), RequestID: requestID},
		})
		return b
	}
	return errorEnvelope(status, requestID, "scripted failure")
}

var errTooLarge = errors.New("body too large")

// readBody reads at most MaxBodyBytes+1 bytes, never all of an oversized body.
func (s *Simulator) readBody(r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, errTooLarge
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > limit {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

// admit applies the workflow's and the token's sliding windows; a call is
// counted only when both admit it.
func (s *Simulator) admit(wf *workflow, token string, now time.Time) (bool, time.Duration) {
	wf.mu.Lock()
	defer wf.mu.Unlock()
	ok, wait := wf.limiter.check(now)
	var tw *window
	if s.cfg.PerTokenRate > 0 {
		s.tokMu.Lock()
		defer s.tokMu.Unlock()
		tw = s.tokens[token]
		if tw == nil {
			tw = newWindow(s.cfg.PerTokenRate, s.windowSpan())
			s.tokens[token] = tw
		}
		tok, twait := tw.check(now)
		ok = ok && tok
		wait = max(wait, twait)
	}
	if !ok {
		return false, wait
	}
	wf.limiter.admit(now)
	tw.admit(now)
	return true, 0
}

// pop takes the next scripted step: the key's script first, then the
// workflow's.
func (wf *workflow) pop(key string) (Step, bool) {
	wf.mu.Lock()
	defer wf.mu.Unlock()
	if key != "" {
		if steps := wf.keyScripts[key]; len(steps) > 0 {
			if len(steps) == 1 {
				delete(wf.keyScripts, key)
			} else {
				wf.keyScripts[key] = steps[1:]
			}
			return steps[0], true
		}
	}
	if len(wf.script) > 0 {
		st := wf.script[0]
		wf.script = wf.script[1:]
		return st, true
	}
	return Step{}, false
}

// respond waits delay (unless the client leaves or the simulator closes)
// and writes rep.
func (s *Simulator) respond(w http.ResponseWriter, r *http.Request, delay time.Duration, rep reply, requestID string) {
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			panic(http.ErrAbortHandler)
		}
	}
	if rep.hostile != nil {
		s.writeHostile(w, r, *rep.hostile, requestID)
		return
	}
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	if rep.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", http.MethodPost)
	}
	writeJSON(w, rep.status, rep.body)
}
