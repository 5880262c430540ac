// Package app wires qgate together: configuration in, a running service out. Tests start the
// whole service in-process through New and Start; cmd/qgate calls Run.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/access"
	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/dispatch"
	"github.com/qgate/qgate/internal/kafka"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/receiver"
	"github.com/qgate/qgate/internal/router"
	"github.com/qgate/qgate/internal/store"
	"github.com/qgate/qgate/internal/support"
	"github.com/qgate/qgate/internal/version"
)

// App is a running qgate node.
type App struct {
	cfg      config.Config
	log      *zap.Logger
	opts     Options
	store    *store.DB
	broker   *kafka.Embedded
	brokers  []string
	producer *kafka.Producer
	receiver *receiver.Receiver
	auth     *access.Authenticator
	registry *prometheus.Registry
	engine   *gin.Engine
	server   *http.Server
	listener net.Listener
	metrics  *http.Server // on QGATE_METRICS_ADDR, when set
	secret   []byte

	destinations *destination.Registry
	destService  *destination.Service
	status       *store.StatusWriter
	client       *qualtrics.Client
	jobs         *kafka.Producer

	// The background stages, started by Start and stopped together by Shutdown.
	stopRefresh  context.CancelFunc
	stages       []stage    // the router and the dispatcher
	stageDied    chan error // a stage that returned without being asked to stop
	routerM      *router.Metrics
	dispatchM    *dispatch.Metrics
	consumerErrs *consumerErrors
	live         atomic.Pointer[dispatch.Dispatcher] // the dispatcher, once the stages started
	survey       *surveyWatch                        // survey watch (survey.go)
	alerts       *alerting                           // alert subscriptions (alerts.go)
}

// New builds a node from cfg: it opens the store, starts the embedded broker when no brokers
// are configured, creates missing topics and assembles the HTTP API. It does not listen yet.
// PostgreSQL and Kafka are waited for, with backoff, for at most cfg.StartupTimeout (see
// startup.go). On error everything opened so far is closed again.
func New(ctx context.Context, cfg config.Config, log *zap.Logger) (*App, error) {
	return NewWith(ctx, cfg, log, Options{})
}

// Options are what New leaves at their defaults: hooks for tests, not configuration.
type Options struct {
	// Store adjusts how the store is opened (e.g. a storefault injector that also counts the
	// statements the node runs).
	Store store.Options
}

// NewWith is New with options.
func NewWith(ctx context.Context, cfg config.Config, log *zap.Logger, o Options) (*App, error) {
	a := &App{cfg: cfg, log: log, opts: o, registry: prometheus.NewRegistry(), stageDied: make(chan error, 2)}
	if err := a.build(ctx); err != nil {
		a.closeAll()
		return nil, err
	}
	return a, nil
}

func (a *App) build(ctx context.Context) error {
	cfg, log := a.cfg, a.log
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	bound := cfg.StartupTimeout
	if bound <= 0 { // a Config built by hand, not loaded
		bound = config.Default().StartupTimeout
	}
	sctx, cancel := context.WithTimeoutCause(ctx, bound, errStartupDeadline)
	err := a.connect(sctx)
	cancel()
	if err != nil {
		return err
	}
	if a.secret, err = loadSecret(cfg, log); err != nil {
		return err
	}

	a.producer = kafka.NewProducer(a.brokers, cfg.ProfileTopic, kafka.ProducerOptions{})
	a.receiver = receiver.New(a.producer, receiver.Options{
		MaxBodyBytes:   cfg.MaxBodyBytes,
		MaxBatch:       cfg.MaxBatch,
		ProduceTimeout: cfg.ProduceTimeout,
	}, receiver.NewMetrics(a.registry))
	a.auth = access.NewAuthenticator(a.store, cfg.AdminKey)
	if cfg.AdminKey == "" {
		log.Warn("QGATE_ADMIN_KEY is not set: no bootstrap admin key; create keys with 'qgate keys create'")
	}
	box, err := destination.NewBox(a.secret)
	if err != nil {
		return err
	}
	a.destinations = destination.NewRegistry(a.store, box, log)
	if err := a.destinations.Load(ctx); err != nil {
		return fmt.Errorf("load destinations: %w", err)
	}
	policy := qualtrics.HostPolicy{AllowedHosts: cfg.AllowedHosts, AllowPrivate: cfg.AllowPrivateNetworks}
	a.client = qualtrics.NewClient(qualtrics.Options{Timeout: cfg.DeliveryTimeout, UserAgent: version.UserAgent(), Policy: policy})
	a.destService = &destination.Service{Store: a.store, Box: box, Registry: a.destinations, Now: time.Now, Policy: policy,
		Tester: &router.Tester{Sender: a.client}}
	a.status = store.NewStatusWriter(a.store)
	a.jobs = kafka.NewProducer(a.brokers, cfg.DeliveryTopic, kafka.ProducerOptions{})
	a.routerM = router.NewMetrics(a.registry)
	a.dispatchM = dispatch.NewMetrics(a.registry)
	a.consumerErrs = newConsumerErrors(a.registry, log.Named("kafka"))
	a.survey = newSurveyWatch(a, box, policy)
	a.alerts = newAlerting(a, box, policy)
	a.engine = a.routes()
	return nil
}

func (a *App) routes() *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.HandleMethodNotAllowed = true
	e.NoRoute(api.NoRoute)
	e.NoMethod(api.NoMethod)
	e.Use(api.Recovery(a.log), api.AccessLog(a.log), api.RequestMetrics(a.registry))
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", a.ready)
	if a.cfg.MetricsAddr == "" {
		e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{})))
	}
	support.RegisterUI(e)

	v1 := e.Group("/v1")
	a.receiver.Register(v1.Group("", access.Require(a.auth, access.RoleIngest)))
	keys := &access.Handlers{Store: a.store, Auth: a.auth, Now: time.Now}
	keys.Register(v1.Group("", access.Require(a.auth, access.RoleAdmin)))
	(&destination.Handlers{Service: a.destService}).Register(v1.Group("", access.Require(a.auth, access.RoleOperator)))
	sup := &support.Handlers{Store: a.store, Circuits: circuits{a}, Channels: a.store, Now: time.Now}
	sup.Register(v1.Group("", access.Require(a.auth, access.RoleSupport)))
	sup.RegisterStats(v1.Group("", access.Require(a.auth, access.RoleSupport, access.RoleOperator)))
	a.survey.register(e, v1, a.auth)
	a.alerts.register(v1, a.auth)
	return e
}

// circuits answers from the node's dispatcher, which exists only while the node runs.
type circuits struct{ a *App }

func (c circuits) Circuit(destID string) (string, bool) {
	d := c.a.live.Load()
	if d == nil {
		return "closed", false
	}
	return d.Circuit(destID)
}

func (c circuits) Wake(destID string) {
	if d := c.a.live.Load(); d != nil {
		d.Wake(destID)
	}
}

func (a *App) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := gin.H{}
	ok := true
	if a.receiver.Draining() {
		checks["draining"], ok = "shutting down", false
	}
	if err := a.store.Ping(ctx); err != nil {
		// The error can name the database host and user: the log gets it, not the anonymous caller.
		a.log.Warn("readyz: the store did not answer", zap.Error(err))
		checks["store"], ok = "unavailable", false
	} else {
		checks["store"] = "ok"
	}
	if err := kafka.Ping(ctx, a.brokers); err != nil {
		checks["kafka"], ok = "unreachable", false
	} else {
		checks["kafka"] = "ok"
	}
	status := http.StatusOK
	if !ok {
		status = http.StatusServiceUnavailable
	}
	c.JSON(status, gin.H{"ready": ok, "checks": checks})
}

// Handler is the node's HTTP API.
func (a *App) Handler() http.Handler { return a.engine }

// Brokers are the Kafka brokers the node uses (the embedded one's address in the default mode).
func (a *App) Brokers() []string { return a.brokers }

// Store is the node's store (for tests and the CLI).
func (a *App) Store() *store.DB { return a.store }

// Start listens on the configured address and serves in the background. It returns the bound
// address (useful with port 0).
func (a *App) Start() (string, error) {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	a.listener = ln
	a.server = &http.Server{Handler: a.engine, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		if err := a.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", zap.Error(err))
		}
	}()
	if err := a.startMetrics(); err != nil {
		a.server.Close()
		return "", err
	}
	a.startStages()
	a.survey.start()
	a.alerts.start()
	a.log.Info("qgate listening", zap.String("addr", ln.Addr().String()), zap.String("store", string(a.store.Dialect())))
	return ln.Addr().String(), nil
}

// Consumer groups of the pipeline's stages.
const (
	routerGroup   = "qgate-router"
	dispatchGroup = "qgate-dispatcher"
)

// startStages starts the registry refresh, the router and the dispatcher in the background.
func (a *App) startStages() {
	refreshCtx, stopRefresh := context.WithCancel(context.Background())
	a.stopRefresh = stopRefresh
	go a.destinations.Run(refreshCtx, a.cfg.RegistryRefresh)
	go store.RunPruner(refreshCtx, a.store, a.cfg.Retention, time.Hour, a.log.Named("retention"))

	routerSrc := kafka.NewConsumer(a.brokers, routerGroup, a.cfg.ProfileTopic, kafka.ConsumerOptions{MaxWait: a.cfg.ConsumerFetchWait(), OnError: a.consumerErrs.reporter(routerGroup)})
	r := router.New(routerSrc, a.destinations, a.jobs, a.status, a.log.Named("router"), a.routerM)
	a.startStage("router", routerSrc, r.Run)

	dispatchSrc := kafka.NewConsumer(a.brokers, dispatchGroup, a.cfg.DeliveryTopic, kafka.ConsumerOptions{MaxWait: a.cfg.ConsumerFetchWait(), OnError: a.consumerErrs.reporter(dispatchGroup)})
	d := dispatch.New(dispatchSrc, a.destinations, a.client, a.status, a.store, a.log.Named("dispatch"), a.dispatchM, dispatch.Options{
		RetryWindow:    a.cfg.RetryWindow,
		Backoff:        dispatch.Backoff{Base: a.cfg.RetryBaseDelay, Max: a.cfg.RetryMaxDelay},
		BreakerTimeout: a.cfg.BreakerTimeout,
		Channels:       a.channelLanes(),
	})
	a.live.Store(d)
	a.startStage("dispatcher", dispatchSrc, d.Run)
}

// channelLanes is what the dispatcher's notification-channel lanes send through (nil in an
// App assembled without survey watch).
func (a *App) channelLanes() dispatch.Channels {
	if a.survey == nil {
		return nil
	}
	return a.survey.lanes
}

// Run starts the node and serves until ctx is cancelled, then shuts down gracefully.
func (a *App) Run(ctx context.Context) error {
	if _, err := a.Start(); err != nil {
		a.closeAll()
		return err
	}
	var died error
	select {
	case <-ctx.Done():
	case died = <-a.stageDied:
		// A node without its router or dispatcher would accept updates that nothing routes or
		// delivers: stop and exit non-zero, so that the supervisor starts it again.
		a.log.Error("a pipeline stage stopped by itself; shutting the node down", zap.Error(died))
	}
	// Keep accepting for a moment while ingest and readyz answer 503: connections already queued
	// (and load balancers still routing here) get a clear 503 instead of a reset.
	a.log.Info("shutting down: draining ingest", zap.Duration("drain", a.cfg.ShutdownDrain))
	a.DrainIngest()
	time.Sleep(a.cfg.ShutdownDrain)
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	return errors.Join(died, a.Shutdown(sctx))
}

// DrainIngest makes ingest answer 503 and readiness fail from now on; Shutdown calls it first.
func (a *App) DrainIngest() { a.receiver.Drain() }

// Shutdown stops accepting ingest (503), finishes in-flight requests, stops the router and
// the dispatcher (in-flight deliveries finish, finished offsets are committed), flushes the
// producers and closes the store and the embedded broker.
func (a *App) Shutdown(ctx context.Context) error {
	a.DrainIngest()
	var errs []error
	if a.server != nil {
		if err := a.server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if a.metrics != nil {
		_ = a.metrics.Close()
	}
	ended, err := a.stopStages(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if a.survey != nil { // nil in an App a test assembles without build
		a.survey.shutdown(ctx)
	}
	if a.alerts != nil {
		a.alerts.shutdown(ctx)
	}
	if !ended {
		a.log.Error("shutdown: a stage is still running after QGATE_SHUTDOWN_TIMEOUT; the status writer, the job producer and the store stay open under it until the process exits")
		a.closeShared()
		return errors.Join(errs...)
	}
	a.closeAll()
	return errors.Join(errs...)
}

// closeAll closes everything the node opened. Only once no stage runs: the stages write
// through the status writer, publish through the job producer and read the store.
func (a *App) closeAll() {
	if a.stopRefresh != nil {
		a.stopRefresh()
	}
	if a.jobs != nil {
		a.jobs.Close()
	}
	if a.status != nil {
		a.status.Close()
	}
	a.closeShared()
	if a.store != nil {
		a.store.Close()
	}
}

// closeShared closes what no stage uses: the refresh and pruner, idle destination
// connections, the ingest producer and the embedded broker.
func (a *App) closeShared() {
	if a.stopRefresh != nil {
		a.stopRefresh()
	}
	if a.client != nil {
		a.client.CloseIdleConnections()
	}
	if a.producer != nil {
		a.producer.Close()
	}
	if a.broker != nil {
		a.broker.Close()
	}
}

// loadSecret returns the 32-byte key that encrypts stored tokens: QGATE_SECRET_KEY, or in the
// embedded default a key generated once into the data dir.
func loadSecret(cfg config.Config, log *zap.Logger) ([]byte, error) {
	if cfg.SecretKey != "" {
		return config.DecodeSecretKey(cfg.SecretKey)
	}
	path := filepath.Join(cfg.DataDir, "secret.key")
	if b, err := os.ReadFile(path); err == nil {
		return config.DecodeSecretKey(string(b))
	}
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k[:])+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write generated secret key: %w", err)
	}
	log.Warn("QGATE_SECRET_KEY not set: generated one into the data dir; back it up, stored tokens cannot be read without it", zap.String("path", path))
	return k[:], nil
}
