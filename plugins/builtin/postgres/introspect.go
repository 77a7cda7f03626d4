package postgres

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/datapulse/datapulse/plugins/sdk"
)

// Page tokens are the last name of the previous page (keyset paging).
func encodeToken(last string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("k:" + last))
}

func decodeToken(tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || !strings.HasPrefix(string(b), "k:") {
		return "", sdk.Errorf(sdk.CodeInvalidArgument, "invalid page token")
	}
	return string(b[2:]), nil
}

// Schemas the user cannot query, or that hold only PostgreSQL's own objects.
const userSchemas = `n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
	AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
	AND has_schema_privilege(n.oid, 'USAGE')`

func (c *Connector) ListNamespaces(ctx context.Context, cfg sdk.Config, p sdk.Page) (sdk.NamespacePage, error) {
	after, err := decodeToken(p.Token)
	if err != nil {
		return sdk.NamespacePage{}, err
	}
	var page sdk.NamespacePage
	err = c.readTx(ctx, cfg, func(tx querier) error {
		rows, err := tx.Query(ctx, `SELECT n.nspname FROM pg_namespace n WHERE `+userSchemas+`
			AND n.nspname COLLATE "C" > $1 ORDER BY n.nspname COLLATE "C" LIMIT $2`, after, p.Size+1)
		if err != nil {
			return mapErr(ctx, err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return mapErr(ctx, err)
		}
		if len(names) > p.Size {
			names = names[:p.Size]
			page.NextToken = encodeToken(names[len(names)-1])
		}
		page.Namespaces = names
		return nil
	})
	return page, err
}

func (c *Connector) ListTables(ctx context.Context, cfg sdk.Config, namespace string, p sdk.Page) (sdk.TablePage, error) {
	after, err := decodeToken(p.Token)
	if err != nil {
		return sdk.TablePage{}, err
	}
	var page sdk.TablePage
	err = c.readTx(ctx, cfg, func(tx querier) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = $1 AND `+userSchemas+`)`, namespace).Scan(&exists); err != nil {
			return mapErr(ctx, err)
		}
		if !exists {
			return sdk.Errorf(sdk.CodeNotFound, "schema %q does not exist or is not readable", namespace)
		}
		rows, err := tx.Query(ctx, `SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'f', 'p') AND NOT c.relispartition
			AND c.relname COLLATE "C" > $2 ORDER BY c.relname COLLATE "C" LIMIT $3`, namespace, after, p.Size+1)
		if err != nil {
			return mapErr(ctx, err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, kind string
			if err := rows.Scan(&name, &kind); err != nil {
				return mapErr(ctx, err)
			}
			k := sdk.KindTable
			if kind == "v" || kind == "m" {
				k = sdk.KindView
			}
			page.Tables = append(page.Tables, sdk.TableRef{Namespace: namespace, Name: name, Kind: k})
		}
		if err := rows.Err(); err != nil {
			return mapErr(ctx, err)
		}
		if len(page.Tables) > p.Size {
			page.Tables = page.Tables[:p.Size]
			page.NextToken = encodeToken(page.Tables[len(page.Tables)-1].Name)
		}
		return nil
	})
	return page, err
}

func (c *Connector) DescribeTables(ctx context.Context, cfg sdk.Config, tables []sdk.TableRef) ([]sdk.TableInfo, error) {
	out := make([]sdk.TableInfo, 0, len(tables))
	err := c.readTx(ctx, cfg, func(tx querier) error {
		for _, t := range tables {
			ns := t.Namespace
			if ns == "" {
				ns = "public"
			}
			rows, err := tx.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, a.atttypmod, NOT a.attnotnull, c.relkind::text
				FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'v', 'm', 'f', 'p')
				AND a.attnum > 0 AND NOT a.attisdropped AND has_table_privilege(c.oid, 'SELECT')
				ORDER BY a.attnum`, ns, t.Name)
			if err != nil {
				return mapErr(ctx, err)
			}
			info := sdk.TableInfo{Ref: sdk.TableRef{Namespace: t.Namespace, Name: t.Name, Kind: sdk.KindTable}}
			for rows.Next() {
				var name, native, kind string
				var oid uint32
				var typmod int32
				var nullable bool
				if err := rows.Scan(&name, &native, &oid, &typmod, &nullable, &kind); err != nil {
					rows.Close()
					return mapErr(ctx, err)
				}
				if kind == "v" || kind == "m" {
					info.Ref.Kind = sdk.KindView
				}
				info.Columns = append(info.Columns, sdk.Column{Name: name, NativeType: native, Type: ArrowType(oid, typmod), Nullable: nullable})
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return mapErr(ctx, err)
			}
			if len(info.Columns) == 0 {
				return sdk.Errorf(sdk.CodeNotFound, "table %s.%s does not exist or is not readable", ns, t.Name)
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}
