// Package core is the embeddable DataPulse application: App wires the store,
// the domain services and the API together.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/datapulse/datapulse/core/alerting"
	"github.com/datapulse/datapulse/core/api"
	"github.com/datapulse/datapulse/core/backupjob"
	"github.com/datapulse/datapulse/core/cachesync"
	"github.com/datapulse/datapulse/core/config"
	"github.com/datapulse/datapulse/core/dashboards"
	"github.com/datapulse/datapulse/core/datamodels"
	"github.com/datapulse/datapulse/core/datasources"
	"github.com/datapulse/datapulse/core/egress"
	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/jobs"
	"github.com/datapulse/datapulse/core/notify"
	"github.com/datapulse/datapulse/core/policysync"
	"github.com/datapulse/datapulse/core/principal"
	"github.com/datapulse/datapulse/core/queries"
	"github.com/datapulse/datapulse/core/rendering"
	"github.com/datapulse/datapulse/core/resultcache"
	"github.com/datapulse/datapulse/core/secrets"
	"github.com/datapulse/datapulse/core/store"
	"github.com/datapulse/datapulse/core/workers"
	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/policy"
)

// App is one running DataPulse.
type App struct {
	cfg      config.Config
	log      *slog.Logger
	store    *store.Store
	identity *identity.Service
	policy   *policy.Enforcer
	psync    *policysync.Sync // nil on SQLite (one process)
	csync    *cachesync.Sync  // nil on SQLite
	// workers is the background work (the syncers above, and what later
	// registers itself): started at the end of New, stopped by Close.
	workers    *workers.Group
	jobs       *jobs.Service // durable background work (River)
	dashboards *dashboards.Service
	// connectors run as subprocesses; nil until init reaches them.
	connectors  *host.Host
	datasources *datasources.Service
	queries     *queries.Service
	// egress checks every outbound connection; notifier sends email,
	// webhooks and Slack messages through it.
	egress   *egress.Guard
	notifier *notify.Notifier
	api      *api.Server
}

// Policy is the authorization enforcer.
func (a *App) Policy() *policy.Enforcer { return a.policy }

// Jobs is the durable background work: domain services register their
// workers there before New returns.
func (a *App) Jobs() *jobs.Service { return a.jobs }

// Dashboards is the dashboards service.
func (a *App) Dashboards() *dashboards.Service { return a.dashboards }

// New opens the database, applies pending migrations, creates the first
// admin when configured, and builds the API. It does not listen yet.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, version string) (*App, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	store.OperatorVersion = "datapulse " + version
	st, err := store.Open(ctx, store.Options{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Logger: log})
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, store: st, workers: workers.NewGroup(log)}
	if err := a.init(ctx, version); err != nil {
		a.Close()
		return nil, err
	}
	if err := a.workers.Start(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

func (a *App) init(ctx context.Context, version string) error {
	cfg, log, st := a.cfg, a.log, a.store
	applied, err := st.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	log.InfoContext(ctx, "database ready", "dialect", st.Dialect, "migrations_applied", len(applied))
	// Several processes may share a PostgreSQL database: listen for their
	// authorization changes before loading, so none falls in between.
	if st.Dialect == store.Postgres {
		if a.psync, err = policysync.Listen(ctx, cfg.DatabaseURL, st.DB(), st.Client, log); err != nil {
			return err
		}
		// Registered at once so that Close releases the listening connection
		// even when a later step of New fails.
		if err := a.workers.Add(ctx, a.psync); err != nil {
			return err
		}
	}
	if a.jobs, err = jobs.New(ctx, st, jobs.Options{DatabaseURL: cfg.DatabaseURL, Logger: log}); err != nil {
		return err
	}
	if err := a.workers.Add(ctx, a.jobs); err != nil {
		return err
	}
	if cfg.BackupDir != "" {
		if err := backupjob.Register(a.jobs, st, backupjob.Options{Dir: cfg.BackupDir, Every: cfg.BackupSchedule, Keep: cfg.BackupKeep,
			DataDir: cfg.DataDir, DatabaseURL: cfg.DatabaseURL, Version: version, Logger: log}); err != nil {
			return err
		}
	}
	// Loading the facts reads every dashboard: it acts as the system.
	facts, err := policy.Load(principal.System(ctx), st.Client, cfg.DefaultRole)
	if err != nil {
		return err
	}
	if a.psync != nil {
		a.psync.Bind(facts)
	}
	if a.policy, err = policy.NewEnforcer(facts); err != nil {
		return err
	}
	a.identity, err = identity.New(st.Client, identity.Options{
		SigningKey:      cfg.TokenSigningKey,
		AccessTokenTTL:  cfg.AccessTokenTTL,
		RefreshTokenTTL: cfg.RefreshTokenTTL,
		Logger:          log,
		Facts:           facts,
	})
	if err != nil {
		return err
	}
	if cfg.AdminEmail != "" {
		created, err := a.identity.BootstrapAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword)
		if err != nil {
			return fmt.Errorf("create first admin from DATAPULSE_ADMIN_EMAIL: %w", err)
		}
		if created {
			log.InfoContext(ctx, "first admin created from environment")
		}
	}
	a.dashboards = dashboards.New(st.Client, a.policy, log)
	box, err := secrets.New(cfg.EncryptionKey)
	if err != nil {
		return err
	}
	// The builtin connectors must never open DataPulse's own database nor its
	// data directory (its keys live there), whatever the metadata backend.
	forbidden := []string{}
	if cfg.DataDir != "" {
		forbidden = append(forbidden, cfg.DataDir)
	}
	if st.Path != "" {
		forbidden = append(forbidden, st.Path, st.Path+"-wal", st.Path+"-shm")
	}
	var forbiddenDBs []host.ForbiddenDatabase
	if st.Dialect == store.Postgres {
		own, err := host.PostgresIdentity(ctx, st.DB(), cfg.DatabaseURL)
		if err != nil {
			return err
		}
		forbiddenDBs = append(forbiddenDBs, own)
	}
	a.connectors, err = host.New(ctx, host.Options{
		Builtins:           cfg.Builtins,
		PluginDir:          filepath.Join(cfg.DataDir, "plugins"),
		Logger:             log,
		QueryTimeout:       cfg.QueryTimeout,
		MaxRows:            cfg.QueryMaxRows,
		ForbiddenPaths:     forbidden,
		ForbiddenDatabases: forbiddenDBs,
		// Sent to connectors in Describe, checked against manifests'
		// "datapulse" ranges. Their log level follows log's.
		HostVersion: version,
	})
	if err != nil {
		return err
	}
	// Describe every connector in the background now: the first listing
	// and the first query find them ready, and none waits for another.
	a.connectors.Warm()
	a.datasources = datasources.New(st.Client, a.policy, a.connectors, box, log)
	cache := resultcache.New[queries.Result](resultcache.Options{MaxBytes: cfg.CacheSize, ComputeTimeout: cfg.QueryTimeout + 5*time.Second})
	caching := queries.Caching{Cache: cache, DefaultTTL: cfg.CacheTTL}
	if st.Dialect == store.Postgres {
		// Replicas drop each other's invalidated results.
		if a.csync, err = cachesync.Listen(ctx, cfg.DatabaseURL, st.DB(), log); err != nil {
			return err
		}
		if err := a.workers.Add(ctx, a.csync); err != nil {
			return err
		}
		caching.Announce = a.csync.Announce
	}
	a.queries = queries.New(st.Client, a.policy, a.datasources, a.connectors,
		queries.Limits{MaxRows: cfg.QueryMaxRows, Timeout: cfg.QueryTimeout}, caching)
	if a.csync != nil {
		a.csync.Bind(a.queries.ForgetAnnounced, a.queries.ForgetAll)
	}
	dm := datamodels.New(st.Client, a.policy, a.datasources, a.queries)
	a.egress = egress.New(cfg.EgressAllow)
	if a.notifier, err = notify.New(notify.Config{
		Guard: a.egress, SMTP: notify.SMTPConfig{URL: cfg.SMTPURL, From: cfg.SMTPFrom}, PublicURL: cfg.PublicURL,
	}); err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	alerts := alerting.New(st.Client, a.policy, dm, a.queries, alerting.Options{
		LinkKey: alerting.DeriveLinkKey(cfg.TokenSigningKey), Box: box, Allow: a.egress.Allow(), Logger: log})
	alerts.SetTester(alerting.NotifyTester{N: a.notifier})
	// Evaluation is a periodic River job (leader-elected); deliveries are
	// jobs inserted with the state change.
	if err := alerts.UseJobs(a.jobs, a.notifier); err != nil {
		return err
	}
	a.api = api.New(api.Deps{
		Identity: a.identity, Dashboards: a.dashboards, DataSources: a.datasources, Queries: a.queries,
		Models: dm, Alerts: alerts,
		Rendering:  rendering.New(a.dashboards, a.queries, dm, a.policy, cfg.RenderConcurrency, log),
		Connectors: a.connectors, Store: st, Logger: log, Version: version,
		Jobs:      a.jobs,
		BodyLimit: cfg.BodyLimit, RequestTimeout: cfg.RequestTimeout,
	})
	return nil
}

// Egress is the guard every outbound connection goes through.
func (a *App) Egress() *egress.Guard { return a.egress }

// Notifier sends notifications (email, webhook, Slack) through the egress guard.
func (a *App) Notifier() *notify.Notifier { return a.notifier }

// Identity is the identity service.
func (a *App) Identity() *identity.Service { return a.identity }

// Store is the metadata database.
func (a *App) Store() *store.Store { return a.store }

// API is the HTTP API.
func (a *App) API() *api.Server { return a.api }

// Listen opens the configured address. Call it before New, so a busy or
// invalid address fails before anything touches the database.
func Listen(cfg config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	return ln, nil
}

// Serve serves on ln until ctx ends, then shuts down gracefully: no new
// connections, in-flight requests may finish within the shutdown timeout.
// It reports an error when that timeout cut requests off.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	a.log.InfoContext(ctx, "listening", "addr", ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- a.api.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down", "timeout", a.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := a.api.Shutdown(sctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown timeout (%s) passed with requests still running; they were cut off", a.cfg.ShutdownTimeout)
		}
		return err
	}
	if err := <-served; err != nil {
		return err
	}
	a.log.Info("stopped")
	return nil
}

// Workers is the background work of this process. Work added after New
// starts at once and is stopped by Close.
func (a *App) Workers() *workers.Group { return a.workers }

// Close stops background work and connector processes, and releases the database.
func (a *App) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	werr := a.workers.Stop(ctx)
	if a.connectors != nil {
		a.connectors.Close()
	}
	return errors.Join(werr, a.store.Close())
}
