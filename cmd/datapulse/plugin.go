package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/datapulse/datapulse/plugins/builtin"
	"github.com/datapulse/datapulse/plugins/host"
	"github.com/datapulse/datapulse/plugins/sdk"
)

func pluginCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "plugin", Short: "Connector plugins"}
	cmd.AddCommand(pluginServeCmd(), pluginChecksumCmd())
	return cmd
}

// pluginServeCmd is how the server runs a builtin connector: it re-executes
// itself as `datapulse plugin serve <name>` and talks go-plugin to it.
func pluginServeCmd() *cobra.Command {
	var forbidden []string
	cmd := &cobra.Command{
		Use:    "serve NAME",
		Short:  "Serve a builtin connector over the plugin protocol (started by the server, not by people)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			factory, ok := builtin.Connectors[args[0]]
			if !ok {
				return fmt.Errorf("no builtin connector %q (have: %s)", args[0], strings.Join(builtin.Names(), ", "))
			}
			if len(forbidden) > 0 {
				// The file-based connectors read their deny list from here.
				os.Setenv("DATAPULSE_FORBIDDEN_PATHS", strings.Join(forbidden, string(os.PathListSeparator)))
			}
			sdk.Serve(factory())
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&forbidden, strings.TrimPrefix(host.ForbiddenPathFlag, "--"), nil, "a file or directory the connector must never open (repeatable)")
	return cmd
}

func pluginChecksumCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "checksum PATH",
		Short: "Print the sha256 of a connector executable, for its manifest.json",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sum, err := host.Checksum(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), sum)
			return nil
		},
	}
}
