package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/datapulse/datapulse/core/api"
)

// openapiCmd writes the API's OpenAPI document without starting a server
// (no database, no connectors): CI lints it, client generators read it.
func openapiCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:    "openapi",
		Short:  "Write the OpenAPI 3.1 document the server serves at /api/v1/openapi.json",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := api.New(api.Deps{Version: version}).OpenAPIJSON()
			if err != nil {
				return fmt.Errorf("openapi: %w", err)
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, raw, "", "  "); err != nil {
				return fmt.Errorf("openapi: %w", err)
			}
			buf.WriteByte('\n')
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(buf.Bytes())
				return err
			}
			return os.WriteFile(out, buf.Bytes(), 0o644)
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "file to write (default: standard output)")
	return cmd
}
