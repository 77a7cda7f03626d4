package postgres

import (
	"database/sql/driver"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// TimestampTZ is the Arrow type of timestamptz columns; timestamp (without
// time zone) columns have no zone.
var (
	TimestampTZ = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	Timestamp   = &arrow.TimestampType{Unit: arrow.Microsecond}
)

// ArrowType returns the Arrow type a column of type oid (with modifier
// typmod) is returned as:
//
//	int2 int4 int8        int16 int32 int64
//	float4 float8         float32 float64
//	numeric(p,s), p<=38   decimal128(p, s)
//	numeric               utf8 (the exact decimal text)
//	text varchar bpchar   utf8
//	name uuid json jsonb  utf8
//	bool                  bool
//	timestamp             timestamp[us]
//	timestamptz           timestamp[us, tz=UTC]
//	date                  date32
//	bytea                 binary
//	oid                   int64
//	anything else         utf8 (its text form; arrays and composites as JSON)
//
// ±infinity timestamps and dates, and NaN or infinite numerics in a
// decimal128 column, are returned as NULL.
func ArrowType(oid uint32, typmod int32) arrow.DataType {
	switch oid {
	case pgtype.Int2OID:
		return arrow.PrimitiveTypes.Int16
	case pgtype.Int4OID:
		return arrow.PrimitiveTypes.Int32
	case pgtype.Int8OID, pgtype.OIDOID:
		return arrow.PrimitiveTypes.Int64
	case pgtype.Float4OID:
		return arrow.PrimitiveTypes.Float32
	case pgtype.Float8OID:
		return arrow.PrimitiveTypes.Float64
	case pgtype.NumericOID:
		if p, s, ok := numericTypmod(typmod); ok {
			return &arrow.Decimal128Type{Precision: p, Scale: s}
		}
		return arrow.BinaryTypes.String
	case pgtype.BoolOID:
		return arrow.FixedWidthTypes.Boolean
	case pgtype.TimestampOID:
		return Timestamp
	case pgtype.TimestamptzOID:
		return TimestampTZ
	case pgtype.DateOID:
		return arrow.FixedWidthTypes.Date32
	case pgtype.ByteaOID:
		return arrow.BinaryTypes.Binary
	}
	return arrow.BinaryTypes.String
}

// numericTypmod decodes numeric(p, s) from a type modifier.
func numericTypmod(typmod int32) (p, s int32, ok bool) {
	if typmod < 4 {
		return 0, 0, false
	}
	t := typmod - 4
	p, s = (t>>16)&0xffff, t&0xffff
	if p < 1 || p > 38 || s > p {
		return 0, 0, false
	}
	return p, s, true
}

// column scans one result column into an Arrow builder.
type column interface {
	target() any               // what rows.Scan scans into
	put(b array.Builder) error // appends the scanned value
	bytes() int64              // bytes appended so far to variable-width data
}

type intCol struct {
	v pgtype.Int8
}

func (c *intCol) target() any  { return &c.v }
func (c *intCol) bytes() int64 { return 0 }
func (c *intCol) put(b array.Builder) error {
	if !c.v.Valid {
		b.AppendNull()
		return nil
	}
	switch bb := b.(type) {
	case *array.Int16Builder:
		bb.Append(int16(c.v.Int64))
	case *array.Int32Builder:
		bb.Append(int32(c.v.Int64))
	case *array.Int64Builder:
		bb.Append(c.v.Int64)
	}
	return nil
}

type float4Col struct{ v pgtype.Float4 }

func (c *float4Col) target() any  { return &c.v }
func (c *float4Col) bytes() int64 { return 0 }
func (c *float4Col) put(b array.Builder) error {
	if !c.v.Valid {
		b.AppendNull()
	} else {
		b.(*array.Float32Builder).Append(c.v.Float32)
	}
	return nil
}

type float8Col struct{ v pgtype.Float8 }

func (c *float8Col) target() any  { return &c.v }
func (c *float8Col) bytes() int64 { return 0 }
func (c *float8Col) put(b array.Builder) error {
	if !c.v.Valid {
		b.AppendNull()
	} else {
		b.(*array.Float64Builder).Append(c.v.Float64)
	}
	return nil
}

type boolCol struct{ v pgtype.Bool }

func (c *boolCol) target() any  { return &c.v }
func (c *boolCol) bytes() int64 { return 0 }
func (c *boolCol) put(b array.Builder) error {
	if !c.v.Valid {
		b.AppendNull()
	} else {
		b.(*array.BooleanBuilder).Append(c.v.Bool)
	}
	return nil
}

type textCol struct {
	v pgtype.Text
	n int64
}

func (c *textCol) target() any  { return &c.v }
func (c *textCol) bytes() int64 { return c.n }
func (c *textCol) put(b array.Builder) error {
	if !c.v.Valid {
		b.AppendNull()
		return nil
	}
	c.n += int64(len(c.v.String))
	b.(*array.StringBuilder).Append(c.v.String)
	return nil
}

// rawCol takes json, jsonb and bytea as bytes (nil for NULL).
type rawCol struct {
	v []byte
	n int64
}

func (c *rawCol) target() any  { return &c.v }
func (c *rawCol) bytes() int64 { return c.n }
func (c *rawCol) put(b array.Builder) error {
	if c.v == nil {
		b.AppendNull()
		return nil
	}
	c.n += int64(len(c.v))
	switch bb := b.(type) {
	case *array.StringBuilder:
		bb.BinaryBuilder.Append(c.v)
	case *array.BinaryBuilder:
		bb.Append(c.v)
	}
	return nil
}

type uuidCol struct{ v pgtype.UUID }

func (c *uuidCol) target() any  { return &c.v }
func (c *uuidCol) bytes() int64 { return 0 }
func (c *uuidCol) put(b array.Builder) error {
	if !c.v.Valid {
		b.AppendNull()
		return nil
	}
	u := c.v.Bytes
	b.(*array.StringBuilder).Append(fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]))
	return nil
}

type timestampCol struct {
	v     pgtype.Timestamp
	tz    pgtype.Timestamptz
	hasTZ bool
}

func (c *timestampCol) target() any {
	if c.hasTZ {
		return &c.tz
	}
	return &c.v
}
func (c *timestampCol) bytes() int64 { return 0 }
func (c *timestampCol) put(b array.Builder) error {
	var t time.Time
	var valid bool
	if c.hasTZ {
		t, valid = c.tz.Time, c.tz.Valid && c.tz.InfinityModifier == pgtype.Finite
	} else {
		t, valid = c.v.Time, c.v.Valid && c.v.InfinityModifier == pgtype.Finite
	}
	if !valid {
		b.AppendNull()
		return nil
	}
	b.(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMicro()))
	return nil
}

type dateCol struct{ v pgtype.Date }

func (c *dateCol) target() any  { return &c.v }
func (c *dateCol) bytes() int64 { return 0 }
func (c *dateCol) put(b array.Builder) error {
	if !c.v.Valid || c.v.InfinityModifier != pgtype.Finite {
		b.AppendNull()
		return nil
	}
	days := c.v.Time.Unix() / 86400
	if c.v.Time.Unix()%86400 < 0 {
		days--
	}
	b.(*array.Date32Builder).Append(arrow.Date32(days))
	return nil
}

type numericCol struct {
	v     pgtype.Numeric
	dec   *arrow.Decimal128Type // nil: as text
	n     int64
	scale *big.Int
}

func (c *numericCol) target() any  { return &c.v }
func (c *numericCol) bytes() int64 { return c.n }
func (c *numericCol) put(b array.Builder) error {
	if !c.v.Valid {
		b.AppendNull()
		return nil
	}
	if c.dec == nil {
		v, err := c.v.Value()
		if err != nil {
			return err
		}
		s, _ := v.(string)
		c.n += int64(len(s))
		b.(*array.StringBuilder).Append(s)
		return nil
	}
	if c.v.NaN || c.v.InfinityModifier != pgtype.Finite {
		b.AppendNull()
		return nil
	}
	// value = Int * 10^Exp; the decimal stores value * 10^scale.
	shift := int64(c.v.Exp) + int64(c.dec.Scale)
	n := new(big.Int).Set(c.v.Int)
	if shift > 0 {
		n.Mul(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(shift), nil))
	} else if shift < 0 {
		n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(-shift), nil))
	}
	d := decimal128.FromBigInt(n)
	if !d.FitsInPrecision(c.dec.Precision) {
		return fmt.Errorf("numeric value does not fit numeric(%d,%d)", c.dec.Precision, c.dec.Scale)
	}
	b.(*array.Decimal128Builder).Append(d)
	return nil
}

// anyCol takes any other type through pgx's own decoding, as text.
type anyCol struct {
	v any
	n int64
}

func (c *anyCol) target() any  { return &c.v }
func (c *anyCol) bytes() int64 { return c.n }
func (c *anyCol) put(b array.Builder) error {
	if c.v == nil {
		b.AppendNull()
		return nil
	}
	s, err := textOf(c.v)
	if err != nil {
		return err
	}
	c.n += int64(len(s))
	b.(*array.StringBuilder).Append(s)
	return nil
}

func textOf(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case fmt.Stringer:
		return x.String(), nil
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil {
			return "", err
		}
		if s, ok := dv.(string); ok {
			return s, nil
		}
		return fmt.Sprint(dv), nil
	case []any, map[string]any:
		b, err := json.Marshal(x)
		return string(b), err
	}
	return fmt.Sprint(v), nil
}

func newColumn(fd pgconn.FieldDescription, dt arrow.DataType) column {
	switch fd.DataTypeOID {
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		return &intCol{}
	case pgtype.OIDOID:
		return &anyOIDCol{}
	case pgtype.Float4OID:
		return &float4Col{}
	case pgtype.Float8OID:
		return &float8Col{}
	case pgtype.BoolOID:
		return &boolCol{}
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		return &textCol{}
	case pgtype.JSONOID, pgtype.JSONBOID, pgtype.ByteaOID:
		return &rawCol{}
	case pgtype.UUIDOID:
		return &uuidCol{}
	case pgtype.TimestampOID:
		return &timestampCol{}
	case pgtype.TimestamptzOID:
		return &timestampCol{hasTZ: true}
	case pgtype.DateOID:
		return &dateCol{}
	case pgtype.NumericOID:
		c := &numericCol{}
		if d, ok := dt.(*arrow.Decimal128Type); ok {
			c.dec = d
		}
		return c
	}
	return &anyCol{}
}

// anyOIDCol reads oid (uint32) columns.
type anyOIDCol struct{ v pgtype.Uint32 }

func (c *anyOIDCol) target() any  { return &c.v }
func (c *anyOIDCol) bytes() int64 { return 0 }
func (c *anyOIDCol) put(b array.Builder) error {
	if !c.v.Valid {
		b.AppendNull()
	} else {
		b.(*array.Int64Builder).Append(int64(c.v.Uint32))
	}
	return nil
}

// Schema returns the Arrow schema of a result.
func Schema(fds []pgconn.FieldDescription) *arrow.Schema {
	fields := make([]arrow.Field, len(fds))
	seen := map[string]int{}
	for i, fd := range fds {
		name := fd.Name
		if n := seen[fd.Name]; n > 0 {
			name = fmt.Sprintf("%s_%d", fd.Name, n+1)
		}
		seen[fd.Name]++
		fields[i] = arrow.Field{Name: name, Type: ArrowType(fd.DataTypeOID, fd.TypeModifier), Nullable: true}
	}
	return arrow.NewSchema(fields, nil)
}

// Days and microseconds between 1970-01-01 and PostgreSQL's epoch,
// 2000-01-01.
const (
	pgEpochDays   = 10957
	pgEpochMicros = 946684800000000
)

// fastDecoder decodes a column's raw value (never NULL) straight into its
// builder, without pgx's per-value scan machinery.
type fastDecoder func(raw []byte, b array.Builder) error

func errLen(oid uint32, n int) error {
	return fmt.Errorf("type %d: unexpected binary value of %d bytes", oid, n)
}

// fastDecoderFor returns a decoder of PostgreSQL's binary wire format for the
// common types, or nil (the column then goes through pgx's Scan).
func fastDecoderFor(fd pgconn.FieldDescription) fastDecoder {
	oid := fd.DataTypeOID
	if fd.Format != pgx.BinaryFormatCode {
		switch oid {
		case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID, pgtype.JSONBOID:
			return func(raw []byte, b array.Builder) error { // text format: the text itself
				b.(*array.StringBuilder).BinaryBuilder.Append(raw)
				return nil
			}
		}
		return nil
	}
	fixed := func(n int, put func(raw []byte, b array.Builder)) fastDecoder {
		return func(raw []byte, b array.Builder) error {
			if len(raw) != n {
				return errLen(oid, len(raw))
			}
			put(raw, b)
			return nil
		}
	}
	switch oid {
	case pgtype.Int2OID:
		return fixed(2, func(r []byte, b array.Builder) { b.(*array.Int16Builder).Append(int16(binary.BigEndian.Uint16(r))) })
	case pgtype.Int4OID:
		return fixed(4, func(r []byte, b array.Builder) { b.(*array.Int32Builder).Append(int32(binary.BigEndian.Uint32(r))) })
	case pgtype.Int8OID:
		return fixed(8, func(r []byte, b array.Builder) { b.(*array.Int64Builder).Append(int64(binary.BigEndian.Uint64(r))) })
	case pgtype.Float4OID:
		return fixed(4, func(r []byte, b array.Builder) {
			b.(*array.Float32Builder).Append(math.Float32frombits(binary.BigEndian.Uint32(r)))
		})
	case pgtype.Float8OID:
		return fixed(8, func(r []byte, b array.Builder) {
			b.(*array.Float64Builder).Append(math.Float64frombits(binary.BigEndian.Uint64(r)))
		})
	case pgtype.BoolOID:
		return fixed(1, func(r []byte, b array.Builder) { b.(*array.BooleanBuilder).Append(r[0] != 0) })
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		return fixed(8, func(r []byte, b array.Builder) {
			v := int64(binary.BigEndian.Uint64(r))
			if v == math.MaxInt64 || v == math.MinInt64 { // ±infinity
				b.AppendNull()
				return
			}
			b.(*array.TimestampBuilder).Append(arrow.Timestamp(v + pgEpochMicros))
		})
	case pgtype.DateOID:
		return fixed(4, func(r []byte, b array.Builder) {
			v := int32(binary.BigEndian.Uint32(r))
			if v == math.MaxInt32 || v == math.MinInt32 { // ±infinity
				b.AppendNull()
				return
			}
			b.(*array.Date32Builder).Append(arrow.Date32(v + pgEpochDays))
		})
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID:
		return func(raw []byte, b array.Builder) error {
			b.(*array.StringBuilder).BinaryBuilder.Append(raw)
			return nil
		}
	case pgtype.JSONBOID:
		return func(raw []byte, b array.Builder) error {
			if len(raw) == 0 || raw[0] != 1 {
				return fmt.Errorf("jsonb: unknown binary version")
			}
			b.(*array.StringBuilder).BinaryBuilder.Append(raw[1:])
			return nil
		}
	case pgtype.ByteaOID:
		return func(raw []byte, b array.Builder) error {
			b.(*array.BinaryBuilder).Append(raw)
			return nil
		}
	case pgtype.UUIDOID:
		return fixed(16, func(u []byte, b array.Builder) {
			b.(*array.StringBuilder).Append(fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16]))
		})
	}
	return nil
}

// ScanRecords reads rows into Arrow record batches of at most batchRows rows
// (and about batchBytes bytes) and hands each to emit, which owns it (and
// must release it). It stops at the first error emit returns and returns it.
// The caller closes rows.
//
// Common types are decoded straight from PostgreSQL's binary format
// (rows.RawValues); the others through pgx's Scan. It is the connector's
// whole pgx-to-Arrow path, exported so that an in-process benchmark measures
// exactly the same code.
func ScanRecords(rows pgx.Rows, schema *arrow.Schema, mem memory.Allocator, batchRows int, batchBytes int64, emit func(arrow.RecordBatch) error) error {
	fds := rows.FieldDescriptions()
	fast := make([]fastDecoder, len(fds))
	cols := make([]column, len(fds))
	targets := make([]any, len(fds)) // nil for fast columns: Scan skips them
	needScan := false
	var fixedWidth int64
	varCols := []int{}
	for i, fd := range fds {
		if fast[i] = fastDecoderFor(fd); fast[i] == nil {
			cols[i] = newColumn(fd, schema.Field(i).Type)
			targets[i] = cols[i].target()
			needScan = true
		}
		if fw, ok := schema.Field(i).Type.(arrow.FixedWidthDataType); ok {
			fixedWidth += int64(fw.BitWidth()+7) / 8
		} else {
			varCols = append(varCols, i)
		}
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	builders := b.Fields()
	n := 0
	var varBytes int64
	flush := func() error {
		if n == 0 {
			return nil
		}
		rec := b.NewRecordBatch()
		n, varBytes = 0, 0
		return emit(rec)
	}
	for rows.Next() {
		if needScan {
			if err := rows.Scan(targets...); err != nil {
				return err
			}
		}
		raws := rows.RawValues()
		for i, dec := range fast {
			var err error
			if dec == nil {
				err = cols[i].put(builders[i])
			} else if raws[i] == nil {
				builders[i].AppendNull()
			} else {
				err = dec(raws[i], builders[i])
			}
			if err != nil {
				return fmt.Errorf("column %q: %w", fds[i].Name, err)
			}
		}
		for _, i := range varCols {
			varBytes += int64(len(raws[i])) + 4
		}
		n++
		if n >= batchRows || fixedWidth*int64(n)+varBytes >= batchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}
