package mysql_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/datapulse/datapulse/plugins/builtin/mysql"
	"github.com/datapulse/datapulse/plugins/sdk/sdktest"
)

// SHOW GRANTS and SHOW CREATE USER show the account's password hash on
// MariaDB to the account itself: the connector refuses them, however they
// are spelled or wrapped.
func TestCredentialStatementsRefused(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	var hash string
	if err := e.admin.QueryRow("SELECT PASSWORD(?)", e.password).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	h := sdktest.Start(t, mysql.New(), e.config(), e.secrets())
	for _, q := range []string{
		"SHOW GRANTS",
		"show grants for current_user()",
		"SHOW GRANTS FOR CURRENT_USER",
		"SHOW GRANTS FOR '" + e.user + "'@'%'",
		"  \n\tSHOW/**/GRANTS",
		"-- comment\nSHOW GRANTS",
		"# comment\nSHOW GRANTS",
		"/*!SHOW GRANTS*/",
		"/*!50000 SHOW GRANTS*/",
		"/*M!100100SHOW GRANTS */",
		"/*!SHOW*/ GRANTS",
		"SHOW CREATE USER CURRENT_USER",
		"SHOW  CREATE\nUSER '" + e.user + "'@'%'",
		"EXECUTE IMMEDIATE 'SHOW GRANTS'",
		"EXECUTE IMMEDIATE CONCAT('SHOW ', 'GRANTS')",
		"PREPARE s FROM 'SHOW GRANTS'",
		"SET STATEMENT max_statement_time = 10 FOR SHOW GRANTS",
		"SET STATEMENT max_statement_time = 10, sql_mode = 'ANSI' FOR /*!SHOW GRANTS */",
		// Not a credential, but another user's query (the same account).
		"KILL QUERY 1",
		"/*!KILL*/ 1",
	} {
		res, err := h.Query(ctx, q)
		if err == nil {
			t.Errorf("accepted: %q (%d rows)", q, len(res.Rows))
			for _, r := range res.Rows {
				for _, v := range r {
					if s, ok := v.(string); ok && strings.Contains(s, hash) {
						t.Errorf("%q: the result shows the account's password hash", q)
					}
				}
			}
			continue
		}
		if sdktest.Code(err) != codes.PermissionDenied {
			t.Errorf("%q: %v, want PermissionDenied", q, err)
		}
		if strings.Contains(err.Error(), hash) {
			t.Errorf("%q: the error shows the hash", q)
		}
	}
	// Statements that only look alike still run.
	for _, q := range []string{"SELECT 'SHOW GRANTS'", "SHOW TABLES", "SELECT 1 /* SHOW GRANTS */", "SHOW PRIVILEGES"} {
		if _, err := h.Query(ctx, q); err != nil {
			t.Errorf("%q: %v", q, err)
		}
	}
}

// An account that may read the mysql schema (where every password hash
// lives) is refused, as FILE and SUPER are.
func TestMysqlSchemaReaderRefused(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	check := func(what string, wantOK bool) {
		t.Helper()
		h := sdktest.Start(t, mysql.New(), e.config(), e.secrets())
		hr, err := h.CheckHealth(ctx)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if hr.OK != wantOK {
			t.Errorf("%s: healthy %v (%s), want %v", what, hr.OK, hr.Message, wantOK)
		}
		if !wantOK {
			if !strings.Contains(hr.Message, "mysql system schema") {
				t.Errorf("%s: message %q", what, hr.Message)
			}
			if _, err := h.Query(ctx, "SELECT 1"); sdktest.Code(err) != codes.PermissionDenied {
				t.Errorf("%s: query: %v", what, err)
			}
		}
	}
	u := "'" + e.user + "'@'%'"
	check("SELECT on its database only", true)
	for _, g := range []struct{ grant, revoke string }{
		{"GRANT SELECT ON mysql.* TO " + u, "REVOKE SELECT ON mysql.* FROM " + u},
		{"GRANT SELECT ON *.* TO " + u, "REVOKE SELECT ON *.* FROM " + u},
		{"GRANT SELECT ON mysql.global_priv TO " + u, "REVOKE SELECT ON mysql.global_priv FROM " + u},
		{"GRANT SELECT (User, Priv) ON mysql.global_priv TO " + u, "REVOKE SELECT (User, Priv) ON mysql.global_priv FROM " + u},
	} {
		if _, err := e.admin.Exec(g.grant); err != nil {
			t.Fatal(err)
		}
		check(g.grant, false)
		if _, err := e.admin.Exec(g.revoke); err != nil {
			t.Fatal(err)
		}
	}
	check("after the revokes", true)
}
