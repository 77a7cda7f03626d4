package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/datapulse/datapulse/core"
	"github.com/datapulse/datapulse/core/config"
	"github.com/datapulse/datapulse/core/identity"
)

func adminCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "admin", Short: "Bootstrap and recovery tasks (never exposed over HTTP)"}
	cmd.AddCommand(createUserCmd())
	return cmd
}

func createUserCmd() *cobra.Command {
	var email, password, name string
	var admin, passwordStdin bool
	cmd := &cobra.Command{
		Use:   "create-user",
		Short: "Create a user directly in the database",
		Long: `Creates a user without going through the API, e.g. the first admin:
  datapulse admin create-user --email ada@example.com --password-stdin --admin
The password can also come from --password or DATAPULSE_NEW_USER_PASSWORD;
prefer --password-stdin, which keeps it out of the process list and shell history.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if email == "" {
				return errors.New("--email is required")
			}
			switch {
			case passwordStdin:
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return err
				}
				password = strings.TrimRight(line, "\r\n")
			case password == "":
				password = os.Getenv("DATAPULSE_NEW_USER_PASSWORD")
			}
			if password == "" {
				return errors.New("a password is required: --password-stdin, --password or DATAPULSE_NEW_USER_PASSWORD")
			}
			cfg, err := config.Load(cmd.Flags(), os.LookupEnv)
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg)
			app, err := core.New(cmd.Context(), cfg, log, version)
			if err != nil {
				return err
			}
			defer app.Close()
			role := identity.RoleUser
			if admin {
				role = identity.RoleAdmin
			}
			in := identity.CreateUserInput{Email: email, Password: password, Role: role}
			if name != "" {
				in.Name = &name
			}
			u, err := app.Identity().CreateUserCLI(cmd.Context(), in)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created %s user %s (%s)\n", u.Role, u.Email, u.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&email, "email", "", "email address (login name)")
	f.StringVar(&password, "password", "", "password (prefer --password-stdin)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of standard input")
	f.StringVar(&name, "name", "", "display name")
	f.BoolVar(&admin, "admin", false, "make the user an instance administrator")
	config.Flags(f)
	return cmd
}
