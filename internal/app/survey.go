package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/access"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/survey"
	"github.com/qgate/qgate/internal/version"
)

// surveyWatch is survey watch on this node: the operator and read APIs and the sync
// scheduler (docs/survey-watch.md). Its notifications are deliveries of the delivery engine:
// the outbox hands them to the dispatcher's channel lanes (lanes).
type surveyWatch struct {
	conns     *survey.Service
	pages     *survey.Pages
	channels  *notify.Service
	lanes     *notify.Lanes
	events    *survey.Events
	scheduler *survey.Scheduler
	stop      context.CancelFunc
	done      chan struct{}
}

// How often this node looks for due syncs; POST …/sync wakes the loop at once.
const surveyTick = 30 * time.Second

func newSurveyWatch(a *App, box *destination.Box, policy qualtrics.HostPolicy) *surveyWatch {
	var b [6]byte
	_, _ = rand.Read(b[:])
	node := "node-" + hex.EncodeToString(b[:])
	client := survey.NewClient(survey.ClientOptions{UserAgent: version.UserAgent(), Policy: policy})
	w := &surveyWatch{}
	w.lanes = &notify.Lanes{Store: a.store, Box: box, HTTP: notify.NewHTTPClient(policy), Policy: policy, UserAgent: version.UserAgent()}
	outbox := &notify.Outbox{Store: a.store, Wake: func(ids []string) {
		if d := a.live.Load(); d != nil {
			for _, id := range ids {
				d.Wake(id)
			}
		}
	}}
	syncer := &survey.Syncer{Store: a.store, Box: box, Client: client, Publisher: outbox, Budget: survey.DefaultBudget, Node: node}
	w.scheduler = survey.NewScheduler(a.store, syncer.Sync, node)
	w.scheduler.Tick = surveyTick
	w.scheduler.OnError = func(err error) { a.log.Warn("survey scheduler", zap.Error(err)) }
	w.conns = &survey.Service{Store: a.store, Box: box, Policy: policy, Client: client, Wake: w.scheduler.Wake}
	w.pages = &survey.Pages{Store: a.store}
	w.channels = &notify.Service{Store: a.store, Box: box, Policy: policy}
	w.events = &survey.Events{Store: a.store, Box: box, Canceller: outbox}
	return w
}

func (w *surveyWatch) register(e *gin.Engine, v1 *gin.RouterGroup, auth *access.Authenticator) {
	survey.RegisterUI(e)
	op := v1.Group("", access.Require(auth, access.RoleOperator))
	(&survey.Handlers{Service: w.conns}).Register(op)
	(&notify.Handlers{Service: w.channels}).Register(op)
	w.pages.Register(v1.Group("", access.Require(auth, access.RoleSupport, access.RoleOperator)))
	w.events.Register(v1) // Qualtrics' event posts carry the connection's events key, not a bearer key
}

func (w *surveyWatch) start() {
	ctx, stop := context.WithCancel(context.Background())
	w.stop, w.done = stop, make(chan struct{})
	go func() {
		defer close(w.done)
		w.scheduler.Run(ctx)
	}()
}

// shutdown stops the scheduler and waits for the sync in progress.
func (w *surveyWatch) shutdown(ctx context.Context) {
	if w == nil || w.stop == nil { // an App assembled without survey watch (tests) or never started
		return
	}
	w.stop()
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	w.stop = nil
}
