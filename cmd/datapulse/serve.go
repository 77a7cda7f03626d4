package main

import (
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/datapulse/datapulse/core"
	"github.com/datapulse/datapulse/core/config"
	"github.com/datapulse/datapulse/plugins/builtin"
)

func serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the API server (embedded SQLite unless --database-url names PostgreSQL)",
		Long: `Runs DataPulse. Every flag can also be set as DATAPULSE_<FLAG> (upper case,
dashes as underscores), e.g. DATAPULSE_DATABASE_URL. Flags win over the
environment. Other variables: DATAPULSE_ADMIN_EMAIL and DATAPULSE_ADMIN_PASSWORD
create the first admin when no user exists; DATAPULSE_TOKEN_SIGNING_KEY and
DATAPULSE_ENCRYPTION_KEY (at least 32 bytes) replace the keys otherwise
generated into the data directory.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), os.LookupEnv)
			if err != nil {
				return err
			}
			cfg.Builtins = builtin.Names()
			log := newLogger(os.Stderr, cfg)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			go func() {
				// After the first signal, a second one kills the process at
				// once instead of waiting for the graceful shutdown.
				<-ctx.Done()
				stop()
			}()
			ln, err := core.Listen(cfg)
			if err != nil {
				return err
			}
			app, err := core.New(ctx, cfg, log, version)
			if err != nil {
				ln.Close()
				return err
			}
			defer app.Close()
			return app.Serve(ctx, ln)
		},
	}
	config.Flags(cmd.Flags())
	return cmd
}

func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
