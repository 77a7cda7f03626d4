package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/datapulse/datapulse/plugins/sdk"
)

// kind is how a column is read and what Arrow type it becomes.
type kind int

const (
	kText kind = iota
	kInt
	kUint
	kFloat32
	kFloat64
	kDecimal
	kDate
	kDatetime  // DATETIME: a local date-time, timestamp[us]
	kTimestamp // TIMESTAMP: an instant (the session is in UTC), timestamp[us, tz=UTC]
	kBinary
	kBit
)

// kindOf maps the driver's type name (and decimal size) to a kind and an
// Arrow type:
//
//	TINYINT…BIGINT, YEAR    int64 (UNSIGNED BIGINT: uint64)
//	FLOAT, DOUBLE           float32, float64
//	DECIMAL(p,s), p<=38     decimal128(p, s); else utf8
//	DATE                    date32
//	DATETIME                timestamp[us]
//	TIMESTAMP               timestamp[us, tz=UTC]
//	BINARY, VARBINARY, BLOB binary
//	BIT                     int64
//	anything else           utf8 (CHAR, TEXT, JSON, ENUM, SET, TIME, …)
func kindOf(ct *sql.ColumnType) (kind, arrow.DataType) {
	name := strings.ToUpper(ct.DatabaseTypeName())
	switch name {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR",
		"UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT", "UNSIGNED INT":
		return kInt, arrow.PrimitiveTypes.Int64
	case "UNSIGNED BIGINT":
		return kUint, arrow.PrimitiveTypes.Uint64
	case "FLOAT":
		return kFloat32, arrow.PrimitiveTypes.Float32
	case "DOUBLE":
		return kFloat64, arrow.PrimitiveTypes.Float64
	case "DECIMAL":
		if p, s, ok := ct.DecimalSize(); ok && p >= 1 && p <= 38 && s >= 0 && s <= p {
			return kDecimal, &arrow.Decimal128Type{Precision: int32(p), Scale: int32(s)}
		}
	case "DATE":
		return kDate, arrow.FixedWidthTypes.Date32
	case "DATETIME":
		return kDatetime, &arrow.TimestampType{Unit: arrow.Microsecond}
	case "TIMESTAMP":
		return kTimestamp, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	case "BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB", "GEOMETRY":
		return kBinary, arrow.BinaryTypes.Binary
	case "BIT":
		return kBit, arrow.PrimitiveTypes.Int64
	}
	return kText, arrow.BinaryTypes.String
}

// writeRows streams rows into w.
func writeRows(ctx context.Context, rows *sql.Rows, w sdk.ResultWriter) error {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	kinds := make([]kind, len(cts))
	fields := make([]arrow.Field, len(cts))
	seen := map[string]int{}
	for i, ct := range cts {
		var dt arrow.DataType
		kinds[i], dt = kindOf(ct)
		name := ct.Name()
		if n := seen[name]; n > 0 {
			name = fmt.Sprintf("%s_%d", name, n+1)
		}
		seen[ct.Name()]++
		fields[i] = arrow.Field{Name: name, Type: dt, Nullable: true}
	}
	if err := w.SetSchema(arrow.NewSchema(fields, nil)); err != nil {
		return err
	}
	raw := make([]sql.RawBytes, len(cts))
	ptrs := make([]any, len(cts))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	out := make([]any, len(cts))
	rb := w.Rows()
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, b := range raw {
			v, err := convert(kinds[i], b)
			if err != nil {
				return sdk.Errorf(sdk.CodeInternal, "column %q: %v", cts[i].Name(), err)
			}
			out[i] = v
		}
		if err := rb.Append(out...); err != nil {
			return err
		}
	}
	return rows.Err()
}

// convert turns a column's raw text (the driver's RawBytes, nil for NULL)
// into the value the row builder takes for k.
func convert(k kind, b []byte) (any, error) {
	if b == nil {
		return nil, nil
	}
	s := string(b)
	switch k {
	case kInt:
		return strconv.ParseInt(s, 10, 64)
	case kUint:
		return strconv.ParseUint(s, 10, 64)
	case kFloat32, kFloat64:
		return strconv.ParseFloat(s, 64)
	case kDecimal:
		return s, nil
	case kDate:
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return nil, nil // zero dates ("0000-00-00") are NULL
		}
		return sdk.DateOf(t), nil
	case kDatetime, kTimestamp:
		t, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if err != nil {
			return nil, nil // zero dates are NULL
		}
		return t, nil
	case kBinary:
		return append([]byte(nil), b...), nil
	case kBit:
		var n int64
		for _, c := range b {
			n = n<<8 | int64(c)
		}
		return n, nil
	}
	return strings.ToValidUTF8(s, "\uFFFD"), nil
}
