package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
)

// CreateTempDatabase creates an empty PostgreSQL database next to the one
// serverURL names and returns its URL and a function that drops it. Tests and
// `migrate diff` use it; it never touches the database serverURL names.
func CreateTempDatabase(ctx context.Context, serverURL, prefix string) (string, func(), error) {
	admin, err := sql.Open("pgx", serverURL)
	if err != nil {
		return "", nil, err
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + "_" + hex.EncodeToString(b)
	// name is ours (prefix from code + hex), so quoting it is enough.
	if _, err := admin.ExecContext(ctx, `CREATE DATABASE "`+name+`"`); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create database at %s: %w", redactURL(serverURL), scrubErr(err))
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		admin.Close()
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		admin.ExecContext(context.Background(), `DROP DATABASE IF EXISTS "`+name+`" WITH (FORCE)`) //nolint:errcheck // best effort cleanup
		admin.Close()
	}
	return u.String(), drop, nil
}
