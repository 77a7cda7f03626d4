package models

import "fmt"

// ColumnUse is one column a model reads: the config field that names it, the
// table alias (BaseAlias or a join's alias) and the column.
type ColumnUse struct {
	Field  string
	Alias  string
	Column string
}

// Columns lists every column a valid config reads, so that a caller can check
// them against the data source's schema.
func Columns(cfg Config) []ColumnUse {
	sc := scope{aliases: map[string]bool{}}
	var out []ColumnUse
	use := func(field, ref string) {
		alias, col := sc.splitColumn(ref)
		out = append(out, ColumnUse{Field: field, Alias: alias, Column: col})
	}
	for i, j := range cfg.Joins {
		for k, key := range j.On {
			use(fmt.Sprintf("joins[%d].on[%d].left", i, k), key.Left)
			out = append(out, ColumnUse{Field: fmt.Sprintf("joins[%d].on[%d].right", i, k), Alias: j.Alias, Column: key.Right})
		}
		sc.aliases[j.Alias] = true
	}
	for i, d := range cfg.Dimensions {
		p := fmt.Sprintf("dimensions[%d]", i)
		if d.Column != "" {
			use(p+".column", d.Column)
		}
		if d.Expr != nil {
			for k, a := range d.Expr.Args {
				if a.Column != "" {
					use(fmt.Sprintf("%s.expr.args[%d].column", p, k), a.Column)
				}
			}
		}
	}
	for i, m := range cfg.Measures {
		if m.Column != "" {
			use(fmt.Sprintf("measures[%d].column", i), m.Column)
		}
	}
	return out
}
