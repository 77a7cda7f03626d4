// Command datapulse is the DataPulse server: one binary that serves the API,
// runs background work and manages its own database migrations.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "datapulse",
		Short:         "DataPulse: self-hosted business-intelligence backend",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), migrateCmd(), adminCmd(), pluginCmd(), versionCmd(), openapiCmd())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "datapulse:", err)
		os.Exit(1)
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "datapulse", version) },
	}
}
