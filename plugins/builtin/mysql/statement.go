package mysql

import (
	"strings"

	"github.com/datapulse/datapulse/plugins/sdk"
)

// checkStatement refuses statements that show credentials — SHOW GRANTS and
// SHOW CREATE USER print the connector account's password hash on MariaDB
// (and SHOW CREATE USER on MySQL), to any account, about itself — the
// dynamic SQL that could run them from a string built at run time
// (EXECUTE IMMEDIATE, PREPARE, EXECUTE), and KILL, with which a query could
// stop other users' queries (connections of the same account). Reading the
// grant tables (mysql.user, mysql.global_priv, …) is refused by the
// server: the connector refuses accounts that may read them (see
// checkUser).
//
// This looks only at the statement's leading keywords, after comments and
// with the contents of executable comments (/*! … */, /*M! … */) read as
// the server reads them, and after MariaDB's SET STATEMENT … FOR prefix.
func checkStatement(q string) error {
	toks := tokens(q, 64)
	for len(toks) >= 2 && toks[0] == "SET" && toks[1] == "STATEMENT" {
		// SET STATEMENT var = value, … FOR <statement>
		i := 2
		for i < len(toks) && toks[i] != "FOR" {
			i++
		}
		if i == len(toks) {
			break
		}
		toks = toks[i+1:]
	}
	for len(toks) > 0 && toks[0] == "(" {
		toks = toks[1:]
	}
	at := func(i int) string {
		if i < len(toks) {
			return toks[i]
		}
		return ""
	}
	switch at(0) {
	case "SHOW":
		if at(1) == "GRANTS" || (at(1) == "CREATE" && at(2) == "USER") {
			return sdk.Errorf(sdk.CodePermissionDenied, "SHOW GRANTS and SHOW CREATE USER are not allowed: they show the account's credentials")
		}
	case "EXECUTE", "PREPARE", "DEALLOCATE":
		return sdk.Errorf(sdk.CodePermissionDenied, "dynamic SQL (PREPARE, EXECUTE, EXECUTE IMMEDIATE) is not allowed")
	case "KILL":
		// Any account may kill its own connections: other users' queries
		// on the same data source.
		return sdk.Errorf(sdk.CodePermissionDenied, "KILL is not allowed")
	}
	return nil
}

// tokens returns up to max leading tokens of a MySQL statement: words
// (upper-cased), quoted strings and identifiers as "'", and other
// characters one by one. Comments are skipped; an executable comment's
// contents are tokens.
func tokens(q string, max int) []string {
	var out []string
	execDepth := 0
	for i := 0; i < len(q) && len(out) < max; {
		ch := q[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v':
			i++
		case ch == '#' || (ch == '-' && i+1 < len(q) && q[i+1] == '-' && (i+2 == len(q) || q[i+2] <= ' ')):
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case ch == '/' && i+1 < len(q) && q[i+1] == '*':
			j := i + 2
			exec := false
			if j < len(q) && q[j] == '!' {
				exec, j = true, j+1
			} else if j+1 < len(q) && (q[j] == 'M' || q[j] == 'm') && q[j+1] == '!' {
				exec, j = true, j+2
			}
			if exec {
				// An optional version number; its contents run on servers at
				// least that recent: read them as code in every case.
				for k := 0; k < 6 && j < len(q) && q[j] >= '0' && q[j] <= '9'; k++ {
					j++
				}
				execDepth++
				i = j
				continue
			}
			end := strings.Index(q[j:], "*/")
			if end < 0 {
				return out
			}
			i = j + end + 2
		case ch == '*' && execDepth > 0 && i+1 < len(q) && q[i+1] == '/':
			execDepth--
			i += 2
		case ch == '\'' || ch == '"' || ch == '`':
			j := i + 1
			for j < len(q) {
				if q[j] == '\\' && ch != '`' {
					j += 2
					continue
				}
				if q[j] == ch {
					if j+1 < len(q) && q[j+1] == ch {
						j += 2
						continue
					}
					break
				}
				j++
			}
			out = append(out, "'")
			i = j + 1
		case isWordByte(ch):
			j := i
			for j < len(q) && isWordByte(q[j]) {
				j++
			}
			out = append(out, strings.ToUpper(q[i:j]))
			i = j
		default:
			out = append(out, string(ch))
			i++
		}
	}
	return out
}

func isWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}
