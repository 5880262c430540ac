package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/access"
	"github.com/qgate/qgate/internal/alert"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/dispatch"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/version"
)

// alerting is alert subscriptions on this node: the operator API, GET /v1/alerts, the
// evaluator that fires alerts and the sender that delivers them (docs/alerts.md).
type alerting struct {
	handlers  *alert.Handlers
	evaluator *alert.Evaluator
	sender    *alert.Sender
	stop      context.CancelFunc
	done      chan struct{}
}

// alertTick is how often this node evaluates the subscriptions and looks for due alerts (a
// fired alert wakes the sender at once).
const alertTick = time.Second

func newAlerting(a *App, box *destination.Box, policy qualtrics.HostPolicy) *alerting {
	var b [6]byte
	_, _ = rand.Read(b[:])
	w := &alerting{}
	w.sender = &alert.Sender{Store: a.store, Box: box, HTTP: notify.NewHTTPClient(policy), Node: "node-" + hex.EncodeToString(b[:]), UserAgent: version.UserAgent(),
		// The delivery engine's retry settings (QGATE_RETRY_*).
		Backoff: dispatch.Backoff{Base: a.cfg.RetryBaseDelay, Max: a.cfg.RetryMaxDelay}, Window: a.cfg.RetryWindow, Tick: alertTick,
		OnError: func(err error) { a.log.Warn("alert sender", zap.Error(err)) }}
	w.sender.Init()
	w.evaluator = &alert.Evaluator{Store: a.store, Destinations: a.destinations, Surveys: alertSurveys{a.store}, Channels: alertChannels(a.store), Tick: alertTick, Fired: w.sender.Wake,
		OnError: func(err error) { a.log.Warn("alert evaluator", zap.Error(err)) }}
	w.handlers = &alert.Handlers{Service: &alert.Service{Store: a.store, Box: box, Policy: policy}}
	return w
}

func (w *alerting) register(v1 *gin.RouterGroup, auth *access.Authenticator) {
	w.handlers.Register(v1.Group("", access.Require(auth, access.RoleOperator)))
	w.handlers.RegisterAlerts(v1.Group("", access.Require(auth, access.RoleSupport, access.RoleOperator)))
}

func (w *alerting) start() {
	ctx, stop := context.WithCancel(context.Background())
	w.stop, w.done = stop, make(chan struct{})
	go func() {
		defer close(w.done)
		done := make(chan struct{})
		go func() { defer close(done); w.sender.Run(ctx) }()
		w.evaluator.Run(ctx)
		<-done
	}()
}

// shutdown stops the loops and waits for the pass in progress.
func (w *alerting) shutdown(ctx context.Context) {
	if w.stop == nil {
		return
	}
	w.stop()
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	w.stop = nil
}

// alertChannels gives the notification channels to the alert evaluator as lane targets.
func alertChannels(st notify.Store) func(context.Context) ([]destination.Destination, error) {
	return func(ctx context.Context) ([]destination.Destination, error) {
		chs, err := st.ListChannels(ctx)
		if err != nil {
			return nil, err
		}
		out := make([]destination.Destination, len(chs))
		for i, c := range chs {
			out[i] = destination.Destination{ID: c.ID, Name: c.Name, Enabled: true}
		}
		return out, nil
	}
}
