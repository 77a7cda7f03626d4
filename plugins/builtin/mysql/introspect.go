package mysql

import (
	"context"
	"database/sql"
	"encoding/base64"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/datapulse/datapulse/plugins/sdk"
)

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

const systemSchemas = `('information_schema', 'mysql', 'performance_schema', 'sys')`

func (c *Connector) ListNamespaces(ctx context.Context, cfg sdk.Config, p sdk.Page) (sdk.NamespacePage, error) {
	after, err := decodeToken(p.Token)
	if err != nil {
		return sdk.NamespacePage{}, err
	}
	var page sdk.NamespacePage
	err = c.readTx(ctx, cfg, func(conn *sql.Conn) error {
		rows, err := conn.QueryContext(ctx, `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA
			WHERE SCHEMA_NAME NOT IN `+systemSchemas+` AND CAST(SCHEMA_NAME AS BINARY) > CAST(? AS BINARY)
			ORDER BY CAST(SCHEMA_NAME AS BINARY) LIMIT ?`, after, p.Size+1)
		if err != nil {
			return mapErr(ctx, err)
		}
		defer rows.Close()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				return mapErr(ctx, err)
			}
			page.Namespaces = append(page.Namespaces, n)
		}
		if err := rows.Err(); err != nil {
			return mapErr(ctx, err)
		}
		if len(page.Namespaces) > p.Size {
			page.Namespaces = page.Namespaces[:p.Size]
			page.NextToken = encodeToken(page.Namespaces[p.Size-1])
		}
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
	err = c.readTx(ctx, cfg, func(conn *sql.Conn) error {
		var n int
		if err := conn.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?`, namespace).Scan(&n); err != nil {
			return mapErr(ctx, err)
		}
		if n == 0 {
			return sdk.Errorf(sdk.CodeNotFound, "database %q does not exist or is not readable", namespace)
		}
		rows, err := conn.QueryContext(ctx, `SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES
			WHERE TABLE_SCHEMA = ? AND CAST(TABLE_NAME AS BINARY) > CAST(? AS BINARY)
			ORDER BY CAST(TABLE_NAME AS BINARY) LIMIT ?`, namespace, after, p.Size+1)
		if err != nil {
			return mapErr(ctx, err)
		}
		defer rows.Close()
		for rows.Next() {
			var name, typ string
			if err := rows.Scan(&name, &typ); err != nil {
				return mapErr(ctx, err)
			}
			k := sdk.KindTable
			if strings.Contains(typ, "VIEW") {
				k = sdk.KindView
			}
			page.Tables = append(page.Tables, sdk.TableRef{Namespace: namespace, Name: name, Kind: k})
		}
		if err := rows.Err(); err != nil {
			return mapErr(ctx, err)
		}
		if len(page.Tables) > p.Size {
			page.Tables = page.Tables[:p.Size]
			page.NextToken = encodeToken(page.Tables[p.Size-1].Name)
		}
		return nil
	})
	return page, err
}

// describeType maps information_schema column facts to an Arrow type, as
// kindOf does for results.
func describeType(dataType, columnType string, precision, scale sql.NullInt64) arrow.DataType {
	dt := strings.ToUpper(dataType)
	unsigned := strings.Contains(strings.ToLower(columnType), "unsigned")
	switch dt {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "YEAR":
		return arrow.PrimitiveTypes.Int64
	case "BIGINT":
		if unsigned {
			return arrow.PrimitiveTypes.Uint64
		}
		return arrow.PrimitiveTypes.Int64
	case "FLOAT":
		return arrow.PrimitiveTypes.Float32
	case "DOUBLE":
		return arrow.PrimitiveTypes.Float64
	case "DECIMAL":
		if precision.Valid && scale.Valid && precision.Int64 >= 1 && precision.Int64 <= 38 {
			return &arrow.Decimal128Type{Precision: int32(precision.Int64), Scale: int32(scale.Int64)}
		}
	case "DATE":
		return arrow.FixedWidthTypes.Date32
	case "DATETIME":
		return &arrow.TimestampType{Unit: arrow.Microsecond}
	case "TIMESTAMP":
		return &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case "BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB", "GEOMETRY":
		return arrow.BinaryTypes.Binary
	case "BIT":
		return arrow.PrimitiveTypes.Int64
	}
	return arrow.BinaryTypes.String
}

func (c *Connector) DescribeTables(ctx context.Context, cfg sdk.Config, tables []sdk.TableRef) ([]sdk.TableInfo, error) {
	var out []sdk.TableInfo
	err := c.readTx(ctx, cfg, func(conn *sql.Conn) error {
		for _, t := range tables {
			rows, err := conn.QueryContext(ctx, `SELECT c.COLUMN_NAME, c.DATA_TYPE, c.COLUMN_TYPE, c.NUMERIC_PRECISION, c.NUMERIC_SCALE, c.IS_NULLABLE, t.TABLE_TYPE
				FROM information_schema.COLUMNS c JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
				WHERE c.TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND c.TABLE_NAME = ? ORDER BY c.ORDINAL_POSITION`, t.Namespace, t.Name)
			if err != nil {
				return mapErr(ctx, err)
			}
			info := sdk.TableInfo{Ref: sdk.TableRef{Namespace: t.Namespace, Name: t.Name, Kind: sdk.KindTable}}
			for rows.Next() {
				var name, dataType, columnType, nullable, tableType string
				var precision, scale sql.NullInt64
				if err := rows.Scan(&name, &dataType, &columnType, &precision, &scale, &nullable, &tableType); err != nil {
					rows.Close()
					return mapErr(ctx, err)
				}
				if strings.Contains(tableType, "VIEW") {
					info.Ref.Kind = sdk.KindView
				}
				info.Columns = append(info.Columns, sdk.Column{Name: name, NativeType: columnType, Type: describeType(dataType, columnType, precision, scale), Nullable: nullable == "YES"})
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return mapErr(ctx, err)
			}
			if len(info.Columns) == 0 {
				return sdk.Errorf(sdk.CodeNotFound, "table %s.%s does not exist or is not readable", t.Namespace, t.Name)
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}
