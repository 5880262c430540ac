package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/qgate/qgate/internal/destination"
)

// Destinations lists the destinations alerts are evaluated for (the routable ones).
type Destinations interface {
	Routable() []destination.Destination
}

// Evaluator turns the store's figures into alerts: on every tick, for every enabled
// subscription and every destination it covers, each wanted condition is evaluated; a
// condition that starts opens an episode and fires one alert, later ticks of the same episode
// fire nothing (no storm), and the episode closes when the condition clears (a circuit that
// closes fires circuit.closed). Every node may run one: the store's conditional episode write
// lets one node fire each alert.
type Evaluator struct {
	Store        Store
	Destinations Destinations
	Now          func() time.Time
	Tick         time.Duration // default 1 s
	// LookBack bounds the attempts read for destination.auth (default 24 h).
	LookBack time.Duration
	// Fired is called after an alert was recorded (the sender looks at once).
	Fired   func()
	OnError func(error)
	// Surveys, when set, gives the survey connections' latest syncs (survey.syncFailed).
	Surveys SurveySyncs
	// Channels, when set, gives the notification channels as lane targets: their
	// notifications travel through the delivery engine, so their circuit, dead letters,
	// failure rate and backlog raise the destination events too, for subscriptions that
	// cover every destination or name the channel.
	Channels func(ctx context.Context) ([]destination.Destination, error)
}

func (e *Evaluator) now() time.Time {
	if e.Now != nil {
		return e.Now().UTC()
	}
	return time.Now().UTC()
}

// Run evaluates until ctx ends.
func (e *Evaluator) Run(ctx context.Context) {
	tick := e.Tick
	if tick <= 0 {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := e.Pass(ctx); err != nil && ctx.Err() == nil && e.OnError != nil {
			e.OnError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Condition names (Episode.Condition): one per event, but circuit.opened and circuit.closed
// share the circuit's.
const conditionCircuit = "circuit"

func conditionOf(event string) string {
	if event == EventCircuitOpened || event == EventCircuitClosed {
		return conditionCircuit
	}
	return event
}

// state is one destination's figures, read once per pass.
type state struct {
	sig        *Signals
	deadSince  map[time.Duration]int
	attemptsIn map[time.Duration][2]int
}

// Pass evaluates every subscription once.
func (e *Evaluator) Pass(ctx context.Context) error {
	subs, err := e.Store.ListAlertSubscriptions(ctx)
	if err != nil {
		return fmt.Errorf("alerts: subscriptions: %w", err)
	}
	if len(subs) == 0 {
		return nil
	}
	open, err := e.Store.OpenEpisodes(ctx)
	if err != nil {
		return fmt.Errorf("alerts: episodes: %w", err)
	}
	isOpen := make(map[Episode]bool, len(open))
	for _, ep := range open {
		isOpen[ep] = true
	}
	now := e.now()
	fired := 0
	targets := e.Destinations.Routable()
	if e.Channels != nil {
		chs, err := e.Channels(ctx)
		if err != nil {
			return fmt.Errorf("alerts: channels: %w", err)
		}
		targets = append(slices.Clip(targets), chs...)
	}
	for _, d := range targets {
		st := &state{deadSince: map[time.Duration]int{}, attemptsIn: map[time.Duration][2]int{}}
		for _, s := range subs {
			done := map[string]bool{}
			for _, r := range s.Events {
				cond := conditionOf(r.Type)
				if r.Type == EventSurveySyncFailed {
					continue // per connection, below
				}
				if _, ok := s.Wants(r.Type, d.ID); !ok || done[cond] {
					continue
				}
				done[cond] = true
				ep := Episode{SubscriptionID: s.ID, Condition: cond, DestinationID: d.ID}
				n, err := e.evaluate(ctx, s, d, ep, isOpen[ep], st, now)
				if err != nil {
					return err
				}
				fired += n
			}
		}
	}
	n, err := e.passSurveySyncs(ctx, subs, isOpen, now)
	fired += n
	if err != nil {
		return err
	}
	if fired > 0 && e.Fired != nil {
		e.Fired()
	}
	return nil
}

// evaluate decides one episode and returns how many alerts it recorded.
func (e *Evaluator) evaluate(ctx context.Context, s Subscription, d destination.Destination, ep Episode, open bool, st *state, now time.Time) (int, error) {
	on, event, msg, data, err := e.condition(ctx, s, d, ep.Condition, st, now)
	if err != nil {
		return 0, err
	}
	switch {
	case on && !open:
		var a *Alert
		if _, wants := s.Wants(event, d.ID); wants {
			a = newAlert(s, d, event, msg, data, now)
		}
		ok, err := e.Store.FireAlert(ctx, ep, now, a)
		if err != nil || !ok || a == nil {
			return 0, err
		}
		return 1, nil
	case !on && open:
		var a *Alert
		if ep.Condition == conditionCircuit {
			if _, wants := s.Wants(EventCircuitClosed, d.ID); wants {
				a = newAlert(s, d, EventCircuitClosed, fmt.Sprintf("circuit closed for %q: the destination answers again, deliveries resumed", d.Name), map[string]any{}, now)
			}
		}
		ok, err := e.Store.ClearEpisode(ctx, ep, now, a)
		if err != nil || !ok || a == nil {
			return 0, err
		}
		return 1, nil
	}
	return 0, nil
}

// condition evaluates one condition for a destination: whether it holds, the event it fires
// when it starts, and the alert's message and details.
func (e *Evaluator) condition(ctx context.Context, s Subscription, d destination.Destination, cond string, st *state, now time.Time) (bool, string, string, map[string]any, error) {
	signals := func() (*Signals, error) {
		if st.sig == nil {
			lb := e.LookBack
			if lb <= 0 {
				lb = 24 * time.Hour
			}
			sig, err := e.Store.AlertSignals(ctx, d.ID, now, lb)
			if err != nil {
				return nil, fmt.Errorf("alerts: signals of %s: %w", d.ID, err)
			}
			st.sig = &sig
		}
		return st.sig, nil
	}
	rule, _ := s.Wants(cond, d.ID)
	switch cond {
	case conditionCircuit:
		sig, err := signals()
		if err != nil {
			return false, "", "", nil, err
		}
		msg := fmt.Sprintf("circuit opened for %q: its deliveries are failing and sending is suspended except for probes", d.Name)
		data := map[string]any{}
		if authFailing(sig) {
			msg = fmt.Sprintf("circuit opened for %q: it answered %d (check its username and API token)", d.Name, sig.LastAuthStatus)
			data["statusCode"] = sig.LastAuthStatus
		}
		return sig.CircuitOpen, EventCircuitOpened, msg, data, nil
	case EventDestinationAuth:
		sig, err := signals()
		if err != nil {
			return false, "", "", nil, err
		}
		msg := fmt.Sprintf("%q answered %d: qgate's credentials are refused; check the destination's username and API token (deliveries wait, nothing is dropped)", d.Name, sig.LastAuthStatus)
		return authFailing(sig), cond, msg, map[string]any{"statusCode": sig.LastAuthStatus, "at": sig.LastAuthFailure}, nil
	case EventDeadLettersThreshold:
		w := duration(rule.Window)
		n, ok := st.deadSince[w]
		if !ok {
			var err error
			if n, err = e.Store.DeadLettersSince(ctx, d.ID, now.Add(-w)); err != nil {
				return false, "", "", nil, fmt.Errorf("alerts: dead letters of %s: %w", d.ID, err)
			}
			st.deadSince[w] = n
		}
		msg := fmt.Sprintf("%d dead letters for %q in the last %s (threshold %d)", n, d.Name, rule.Window, rule.Count)
		return n >= rule.Count, cond, msg, map[string]any{"count": n, "threshold": rule.Count, "window": rule.Window}, nil
	case EventFailureRate:
		w := duration(rule.Window)
		c, ok := st.attemptsIn[w]
		if !ok {
			total, failed, err := e.Store.AttemptsSince(ctx, d.ID, now.Add(-w))
			if err != nil {
				return false, "", "", nil, fmt.Errorf("alerts: attempts of %s: %w", d.ID, err)
			}
			c = [2]int{total, failed}
			st.attemptsIn[w] = c
		}
		rate := 0.0
		if c[0] > 0 {
			rate = float64(c[1]) / float64(c[0])
		}
		msg := fmt.Sprintf("%.0f%% of %d attempts to %q failed in the last %s (threshold %.0f%%)", rate*100, c[0], d.Name, rule.Window, rule.Rate*100)
		return c[0] >= rule.MinAttempts && rate >= rule.Rate, cond, msg,
			map[string]any{"attempts": c[0], "failed": c[1], "rate": math.Round(rate*1000) / 1000, "threshold": rule.Rate, "window": rule.Window}, nil
	case EventBacklogAge:
		sig, err := signals()
		if err != nil {
			return false, "", "", nil, err
		}
		limit := duration(rule.OlderThan)
		age := now.Sub(sig.OldestWaiting)
		on := !sig.OldestWaiting.IsZero() && age > limit
		msg := fmt.Sprintf("the oldest waiting delivery for %q is %s old (threshold %s)", d.Name, age.Round(time.Second), rule.OlderThan)
		data := map[string]any{"threshold": rule.OlderThan}
		if !sig.OldestWaiting.IsZero() {
			data["oldestWaitingAt"], data["ageSeconds"] = sig.OldestWaiting, math.Round(age.Seconds())
		}
		return on, cond, msg, data, nil
	}
	return false, "", "", nil, nil
}

// authFailing: the latest answer in the look-back was 401/403 with no delivery since.
func authFailing(sig *Signals) bool {
	return !sig.LastAuthFailure.IsZero() && sig.LastAuthFailure.After(sig.LastSuccess)
}

func newAlert(s Subscription, d destination.Destination, event, msg string, details map[string]any, now time.Time) *Alert {
	id := "alt_" + uuid.Must(uuid.NewV7()).String()
	data := map[string]any{"alertId": id, "subscriptionId": s.ID, "destinationId": d.ID, "destinationName": d.Name, "message": msg}
	for k, v := range details {
		data[k] = v
	}
	b, _ := json.Marshal(data)
	return &Alert{ID: id, SubscriptionID: s.ID, Event: event, DestinationID: d.ID, DestinationName: d.Name, Message: msg, Data: b, FiredAt: now, Status: StatusPending}
}
