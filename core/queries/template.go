// Package queries holds saved queries and runs SQL through connectors.
package queries

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/datapulse/datapulse/core/errs"
)

// Placeholder styles of the connectors' SQL dialects.
const (
	DialectPostgres = "postgres" // $1, $2, …
	DialectMySQL    = "mysql"    // ?
	DialectSQLite   = "sqlite"   // ?
)

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Compiled is SQL with positional placeholders and the values bound to them.
type Compiled struct {
	SQL  string
	Args []any
}

// Compile replaces every {{name}} placeholder of sql with the dialect's
// positional placeholder and appends its value to Args: values are bound by
// the driver, never spliced into the text. A list value expands to one
// placeholder per item ("IN ({{ids}})"). Placeholders inside string
// literals, quoted identifiers or comments are an error, as is a value
// missing from values.
func Compile(sql, dialect string, values map[string]any) (Compiled, error) {
	var (
		out  strings.Builder
		args []any
		n    int
	)
	next := func() string {
		n++
		if dialect == DialectPostgres {
			return "$" + strconv.Itoa(n)
		}
		return "?"
	}
	i := 0
	for i < len(sql) {
		c := sql[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			end, err := skipQuoted(sql, i, c)
			if err != nil {
				return Compiled{}, err
			}
			if strings.Contains(sql[i:end], "{{") {
				return Compiled{}, errs.Invalid("sql", "a {{placeholder}} inside quotes is not replaced: write it outside the quotes")
			}
			out.WriteString(sql[i:end])
			i = end
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				end = len(sql) - i
			}
			out.WriteString(sql[i : i+end])
			i += end
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return Compiled{}, errs.Invalid("sql", "unterminated /* comment")
			}
			out.WriteString(sql[i : i+2+end+2])
			i += 2 + end + 2
		case c == '$' && i > 0 && isIdentChar(sql[i-1]):
			// Part of an identifier such as col$1 (PostgreSQL allows $ inside names).
			out.WriteByte(c)
			i++
		case c == '$' && dialect == DialectPostgres && i+1 < len(sql) && (sql[i+1] == '$' || isIdentStart(sql[i+1])) && dollarTag(sql[i:]) != "":
			tag := dollarTag(sql[i:])
			end := strings.Index(sql[i+len(tag):], tag)
			if end < 0 {
				return Compiled{}, errs.Invalid("sql", "unterminated dollar-quoted string")
			}
			body := sql[i : i+len(tag)+end+len(tag)]
			if strings.Contains(body, "{{") {
				return Compiled{}, errs.Invalid("sql", "a {{placeholder}} inside a dollar-quoted string is not replaced")
			}
			out.WriteString(body)
			i += len(body)
		case c == '$' && dialect == DialectPostgres && i+1 < len(sql) && sql[i+1] >= '0' && sql[i+1] <= '9':
			return Compiled{}, errs.Invalid("sql", "use {{name}} placeholders, not $1-style ones")
		case (c == '$' || c == ':' || c == '@') && dialect == DialectSQLite && i+1 < len(sql) && isIdentChar(sql[i+1]):
			// SQLite reads $1, :name and @name as parameters nobody binds.
			return Compiled{}, errs.Invalid("sql", "use {{name}} placeholders, not "+string(c)+"name or "+string(c)+"1-style ones")
		case c == '?' && dialect != DialectPostgres:
			return Compiled{}, errs.Invalid("sql", "use {{name}} placeholders, not ? ones")
		case c == '{' && strings.HasPrefix(sql[i:], "{{"):
			end := strings.Index(sql[i:], "}}")
			if end < 0 {
				return Compiled{}, errs.Invalid("sql", "unterminated {{placeholder")
			}
			name := strings.TrimSpace(sql[i+2 : i+end])
			if !paramName.MatchString(name) {
				return Compiled{}, errs.Invalid("sql", fmt.Sprintf("%q is not a parameter name (letters, digits, _)", truncate(name, 40)))
			}
			v, ok := values[name]
			if !ok {
				return Compiled{}, errs.Invalid("parameters", "no value for parameter "+name)
			}
			if list, isList := v.([]any); isList {
				if len(list) == 0 {
					return Compiled{}, errs.Invalid("parameters", "list parameter "+name+" is empty")
				}
				for j, item := range list {
					if j > 0 {
						out.WriteString(", ")
					}
					out.WriteString(next())
					args = append(args, item)
				}
			} else {
				out.WriteString(next())
				args = append(args, v)
			}
			i += end + 2
		default:
			out.WriteByte(c)
			i++
		}
	}
	return Compiled{SQL: out.String(), Args: args}, nil
}

// Placeholders lists the distinct parameter names sql uses, in order.
func Placeholders(sql string) []string {
	var names []string
	seen := map[string]bool{}
	for _, m := range placeholderRE.FindAllStringSubmatch(sql, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			names = append(names, m[1])
		}
	}
	return names
}

var placeholderRE = regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,62})\s*\}\}`)

// skipQuoted returns the index after the quoted run starting at i, where a
// doubled quote is an escaped one.
func skipQuoted(s string, i int, q byte) (int, error) {
	for j := i + 1; j < len(s); j++ {
		if s[j] == q {
			if j+1 < len(s) && s[j+1] == q {
				j++
				continue
			}
			return j + 1, nil
		}
		if s[j] == '\\' && q != '"' {
			j++ // MySQL-style escapes; PostgreSQL standard strings have none, but skipping is harmless here
		}
	}
	return 0, errs.Invalid("sql", "unterminated quoted string")
}

func isIdentChar(b byte) bool { return isIdentStart(b) || (b >= '0' && b <= '9') }

func isIdentStart(b byte) bool {
	return b == '_' || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')
}

// dollarTag returns "$tag$" when s starts with a PostgreSQL dollar quote.
func dollarTag(s string) string {
	for j := 1; j < len(s) && j < 64; j++ {
		switch {
		case s[j] == '$':
			return s[:j+1]
		case s[j] == '_' || (s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || (j > 1 && s[j] >= '0' && s[j] <= '9'):
		default:
			return ""
		}
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
