package sdktest

import (
	"fmt"
	"testing"

	"github.com/datapulse/datapulse/plugins/sdk"
)

// SchemaProblems compares a query result reading every column of a table
// with what DescribeTables declared for it, and lists every mismatch: a
// declared column missing from the result or an undeclared one in it, an
// Arrow type other than the declared one, a NULL in a column declared
// non-nullable (and what NullProblems finds). The host maps columns by the
// declared types (charts, filters, data models); a connector declaring
// int64 and sending float64 breaks them.
func SchemaProblems(declared TableInfo, res *Result) []string {
	var out []string
	if res == nil || res.Schema == nil {
		return []string{"no result schema"}
	}
	idx := map[string]int{}
	for i, f := range res.Schema.Fields() {
		idx[f.Name] = i
	}
	seen := map[string]bool{}
	for _, c := range declared.Columns {
		seen[c.Name] = true
		i, ok := idx[c.Name]
		if !ok {
			out = append(out, fmt.Sprintf("column %q is declared but not in the result", c.Name))
			continue
		}
		if got := res.Schema.Field(i).Type.String(); got != c.ArrowType {
			out = append(out, fmt.Sprintf("column %q is declared %s but the result has %s", c.Name, c.ArrowType, got))
		}
		if c.Nullable {
			continue
		}
		for r, row := range res.Rows {
			if i < len(row) && row[i] == nil {
				out = append(out, fmt.Sprintf("column %q is declared non-nullable but row %d is NULL", c.Name, r))
				break
			}
		}
	}
	for _, f := range res.Schema.Fields() {
		if !seen[f.Name] {
			out = append(out, fmt.Sprintf("column %q is in the result but not declared", f.Name))
		}
	}
	return append(out, NullProblems(res)...)
}

// NullProblems lists the columns whose Arrow field says non-nullable but
// that hold a NULL in res.
func NullProblems(res *Result) []string {
	var out []string
	if res == nil || res.Schema == nil {
		return nil
	}
	for i, f := range res.Schema.Fields() {
		if f.Nullable {
			continue
		}
		for r, row := range res.Rows {
			if i < len(row) && row[i] == nil {
				out = append(out, fmt.Sprintf("column %q: the result's Arrow field is not nullable but row %d is NULL", f.Name, r))
				break
			}
		}
	}
	return out
}

// schemaMatches runs TableQuery on the fixture tables and compares each
// result with DescribeTables.
func (s *suite) schemaMatches(t *testing.T) {
	if s.cfg.TableQuery == nil {
		t.Skip("sdktest.Config.TableQuery is not set: query results are not compared with DescribeTables")
	}
	ctx := ctxT(t)
	tables := s.cfg.Tables
	if len(tables) == 0 {
		ns, err := s.h.ListNamespaces(ctx, 1, "")
		if err != nil {
			t.Fatal(err)
		}
		first := ""
		if len(ns.Namespaces) > 0 {
			first = ns.Namespaces[0]
		}
		p, err := s.h.ListTables(ctx, first, 3, "")
		if err != nil {
			t.Fatal(err)
		}
		tables = p.Tables
	}
	if len(tables) == 0 {
		t.Skip("no tables to compare")
	}
	for _, tr := range tables {
		infos, err := s.h.DescribeTables(ctx, tr)
		if err != nil {
			t.Errorf("DescribeTables %s: %v", tableName(tr), err)
			continue
		}
		if len(infos) != 1 {
			t.Errorf("DescribeTables %s: %d tables", tableName(tr), len(infos))
			continue
		}
		q := s.cfg.TableQuery(tr)
		res, err := s.h.QueryLimits(ctx, q, sdk.Limits{MaxRows: 1000})
		if err != nil {
			t.Errorf("TableQuery of %s (%q): %v", tableName(tr), q, err)
			continue
		}
		for _, p := range SchemaProblems(infos[0], res) {
			t.Errorf("table %s: %s", tableName(tr), p)
		}
	}
}

func tableName(t sdk.TableRef) string {
	if t.Namespace == "" {
		return fmt.Sprintf("%q", t.Name)
	}
	return fmt.Sprintf("%q.%q", t.Namespace, t.Name)
}
