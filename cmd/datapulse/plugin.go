package main

import (
	"encoding/json"
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
	var forbidden, forbiddenDBs []string
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
			if len(forbiddenDBs) > 0 {
				// The database connectors read theirs from here, as a JSON array.
				list := make([]json.RawMessage, len(forbiddenDBs))
				for i, d := range forbiddenDBs {
					if !json.Valid([]byte(d)) {
						return fmt.Errorf("--forbidden-database %d is not JSON", i+1)
					}
					list[i] = json.RawMessage(d)
				}
				b, err := json.Marshal(list)
				if err != nil {
					return err
				}
				os.Setenv("DATAPULSE_FORBIDDEN_DATABASES", string(b))
			}
			sdk.Serve(factory())
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&forbidden, strings.TrimPrefix(host.ForbiddenPathFlag, "--"), nil, "a file or directory the connector must never open (repeatable)")
	cmd.Flags().StringArrayVar(&forbiddenDBs, strings.TrimPrefix(host.ForbiddenDatabaseFlag, "--"), nil, "a database the connector must never connect to, as JSON (repeatable)")
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
