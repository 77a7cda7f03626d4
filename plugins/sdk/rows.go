package sdk

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// RowBuilder appends rows to an array.RecordBuilder and writes a record
// batch to the ResultWriter whenever one is full (by rows or by bytes). Get
// one from ResultWriter.Rows.
//
// Append takes Go values and converts them to each column's Arrow type. For
// speed, append to the typed builders of Builder() directly and call EndRow
// after each row.
type RowBuilder struct {
	w       *resultWriter
	b       *array.RecordBuilder
	appends []func(any) error
	rows    int
	// fixedBytes is the size of one row's fixed-width values; varBuilders
	// are the builders whose data size must be asked for.
	fixedBytes  int64
	varBuilders []interface{ DataLen() int }
	released    bool
	broken      error
}

func newRowBuilder(w *resultWriter) *RowBuilder {
	b := array.NewRecordBuilder(w.mem, w.schema)
	r := &RowBuilder{w: w, b: b}
	for i, f := range w.schema.Fields() {
		fb := b.Field(i)
		r.appends = append(r.appends, appenderFor(f, fb))
		if fw, ok := f.Type.(arrow.FixedWidthDataType); ok {
			r.fixedBytes += int64((fw.BitWidth() + 7) / 8)
		} else if vb, ok := fb.(interface{ DataLen() int }); ok {
			r.varBuilders = append(r.varBuilders, vb)
			r.fixedBytes += 4
		} else {
			r.fixedBytes += 16
		}
	}
	return r
}

// Builder returns the underlying record builder, for typed appends. Append
// exactly one value to every field, then call EndRow.
func (r *RowBuilder) Builder() *array.RecordBuilder { return r.b }

// Len returns the number of rows not yet written.
func (r *RowBuilder) Len() int { return r.rows }

// Append appends one row: one value per column, in schema order. nil is
// NULL. It returns ErrLimitReached when the row cap is reached (stop and
// return), or an error when a value does not fit its column's type.
func (r *RowBuilder) Append(values ...any) error {
	if r.released {
		return errors.New("sdk: RowBuilder used after Query returned")
	}
	if len(values) != len(r.appends) {
		return Errorf(CodeInternal, "sdk: row has %d values, the schema has %d columns", len(values), len(r.appends))
	}
	for i, v := range values {
		if err := r.appends[i](v); err != nil {
			// The columns now have different lengths: the row cannot be
			// taken back, so the query fails.
			r.broken = fmt.Errorf("sdk: column %q: %v", r.w.schema.Field(i).Name, err)
			return r.broken
		}
	}
	return r.EndRow()
}

// EndRow records that one value was appended to every field of Builder();
// it writes a batch when one is full.
func (r *RowBuilder) EndRow() error {
	if r.released {
		return errors.New("sdk: RowBuilder used after Query returned")
	}
	r.rows++
	w := r.w
	full := r.rows >= w.lim.BatchMaxRows
	if !full && w.lim.MaxRows > 0 && w.rows+int64(r.rows) > w.lim.MaxRows {
		// One row more than the cap allows: write now so the result is cut
		// here and the connector learns it at once.
		full = true
	}
	if !full && r.rows%64 == 0 {
		full = r.approxBytes()+w.overhead >= int64(w.lim.BatchMaxBytes)*9/10
	}
	if full {
		return r.Flush()
	}
	return nil
}

func (r *RowBuilder) approxBytes() int64 {
	n := r.fixedBytes * int64(r.rows)
	for _, vb := range r.varBuilders {
		n += int64(vb.DataLen())
	}
	return n
}

// Flush writes the rows appended so far as a record batch.
func (r *RowBuilder) Flush() error {
	if r.broken != nil {
		return r.broken
	}
	if r.released || r.rows == 0 {
		return nil
	}
	rec := r.b.NewRecordBatch()
	r.rows = 0
	defer rec.Release()
	return r.w.Write(rec)
}

func (r *RowBuilder) release() {
	if !r.released {
		r.released = true
		r.b.Release()
	}
}

// appenderFor returns a function that appends a Go value to builder b of
// field f.
func appenderFor(f arrow.Field, b array.Builder) func(any) error {
	conv := func(v any) (any, bool) { return deref(v) }
	switch bb := b.(type) {
	case *array.Int64Builder:
		return func(v any) error {
			v, ok := conv(v)
			if !ok {
				bb.AppendNull()
				return nil
			}
			x, err := toInt64(v)
			if err != nil {
				return err
			}
			bb.Append(x)
			return nil
		}
	case *array.Int32Builder:
		return intAppender(conv, bb.AppendNull, func(x int64) error {
			if x < math.MinInt32 || x > math.MaxInt32 {
				return fmt.Errorf("%d out of range for int32", x)
			}
			bb.Append(int32(x))
			return nil
		})
	case *array.Int16Builder:
		return intAppender(conv, bb.AppendNull, func(x int64) error {
			if x < math.MinInt16 || x > math.MaxInt16 {
				return fmt.Errorf("%d out of range for int16", x)
			}
			bb.Append(int16(x))
			return nil
		})
	case *array.Int8Builder:
		return intAppender(conv, bb.AppendNull, func(x int64) error {
			if x < math.MinInt8 || x > math.MaxInt8 {
				return fmt.Errorf("%d out of range for int8", x)
			}
			bb.Append(int8(x))
			return nil
		})
	case *array.Uint64Builder:
		return func(v any) error {
			v, ok := conv(v)
			if !ok {
				bb.AppendNull()
				return nil
			}
			switch x := v.(type) {
			case uint64:
				bb.Append(x)
				return nil
			case uint:
				bb.Append(uint64(x))
				return nil
			}
			x, err := toInt64(v)
			if err != nil {
				return err
			}
			if x < 0 {
				return fmt.Errorf("%d out of range for uint64", x)
			}
			bb.Append(uint64(x))
			return nil
		}
	case *array.Float64Builder:
		return func(v any) error {
			v, ok := conv(v)
			if !ok {
				bb.AppendNull()
				return nil
			}
			x, err := toFloat64(v)
			if err != nil {
				return err
			}
			bb.Append(x)
			return nil
		}
	case *array.Float32Builder:
		return func(v any) error {
			v, ok := conv(v)
			if !ok {
				bb.AppendNull()
				return nil
			}
			x, err := toFloat64(v)
			if err != nil {
				return err
			}
			bb.Append(float32(x))
			return nil
		}
	case *array.BooleanBuilder:
		return func(v any) error {
			v, ok := conv(v)
			if !ok {
				bb.AppendNull()
				return nil
			}
			x, isBool := v.(bool)
			if !isBool {
				return fmt.Errorf("cannot store %T in a boolean column", v)
			}
			bb.Append(x)
			return nil
		}
	case *array.StringBuilder:
		return stringAppender(conv, bb.AppendNull, bb.Append)
	case *array.LargeStringBuilder:
		return stringAppender(conv, bb.AppendNull, bb.Append)
	case *array.BinaryBuilder:
		return func(v any) error {
			v, ok := conv(v)
			if !ok {
				bb.AppendNull()
				return nil
			}
			switch x := v.(type) {
			case []byte:
				bb.Append(x)
			case string:
				bb.AppendString(x)
			default:
				return fmt.Errorf("cannot store %T in a binary column", v)
			}
			return nil
		}
	case *array.TimestampBuilder:
		unit := f.Type.(*arrow.TimestampType).Unit
		return func(v any) error {
			v, ok := conv(v)
			if !ok {
				bb.AppendNull()
				return nil
			}
			switch x := v.(type) {
			case time.Time:
				ts, err := arrow.TimestampFromTime(x, unit)
				if err != nil {
					return err
				}
				bb.Append(ts)
			case Date:
				ts, err := arrow.TimestampFromTime(x.In(time.UTC), unit)
				if err != nil {
					return err
				}
				bb.Append(ts)
			case int64:
				bb.Append(arrow.Timestamp(x))
			default:
				return fmt.Errorf("cannot store %T in a timestamp column", v)
			}
			return nil
		}
	case *array.Date32Builder:
		return func(v any) error {
			v, ok := conv(v)
			if !ok {
				bb.AppendNull()
				return nil
			}
			switch x := v.(type) {
			case Date:
				bb.Append(arrow.Date32(x.DaysSinceEpoch()))
			case time.Time:
				bb.Append(arrow.Date32(DateOf(x).DaysSinceEpoch()))
			default:
				return fmt.Errorf("cannot store %T in a date column", v)
			}
			return nil
		}
	case *array.Decimal128Builder:
		dt := f.Type.(*arrow.Decimal128Type)
		return func(v any) error {
			v, ok := conv(v)
			if !ok {
				bb.AppendNull()
				return nil
			}
			var n decimal128.Num
			var err error
			switch x := v.(type) {
			case string:
				n, err = decimal128.FromString(x, dt.Precision, dt.Scale)
			case float64:
				n, err = decimal128.FromFloat64(x, dt.Precision, dt.Scale)
			case int64:
				n, err = decimal128.FromString(strconv.FormatInt(x, 10), dt.Precision, dt.Scale)
			default:
				return fmt.Errorf("cannot store %T in a decimal column", v)
			}
			if err != nil {
				return err
			}
			bb.Append(n)
			return nil
		}
	}
	return func(v any) error {
		if _, ok := conv(v); !ok {
			b.AppendNull()
			return nil
		}
		return fmt.Errorf("RowBuilder.Append does not support %s columns; append to Builder() directly", f.Type)
	}
}

func intAppender(conv func(any) (any, bool), appendNull func(), put func(int64) error) func(any) error {
	return func(v any) error {
		v, ok := conv(v)
		if !ok {
			appendNull()
			return nil
		}
		x, err := toInt64(v)
		if err != nil {
			return err
		}
		return put(x)
	}
}

func stringAppender(conv func(any) (any, bool), appendNull func(), put func(string)) func(any) error {
	return func(v any) error {
		v, ok := conv(v)
		if !ok {
			appendNull()
			return nil
		}
		switch x := v.(type) {
		case string:
			put(x)
		case []byte:
			put(string(x))
		case time.Time:
			put(x.Format(time.RFC3339Nano))
		case json.Number:
			put(x.String())
		case fmt.Stringer:
			put(x.String())
		case bool:
			put(strconv.FormatBool(x))
		case int64:
			put(strconv.FormatInt(x, 10))
		case int:
			put(strconv.Itoa(x))
		case float64:
			put(strconv.FormatFloat(x, 'g', -1, 64))
		default:
			return fmt.Errorf("cannot store %T in a text column", v)
		}
		return nil
	}
}

// deref returns v with pointers followed; ok is false for nil (NULL).
func deref(v any) (any, bool) {
	switch v.(type) {
	case nil:
		return nil, false
	case int64, string, float64, bool, int, int32, time.Time, []byte, Date:
		return v, true
	}
	for {
		if v == nil {
			return nil, false
		}
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer {
			return v, true
		}
		if rv.IsNil() {
			return nil, false
		}
		v = rv.Elem().Interface()
	}
}

func toInt64(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return 0, fmt.Errorf("%d out of range for int64", x)
		}
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("%d out of range for int64", x)
		}
		return int64(x), nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case json.Number:
		return x.Int64()
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int64(x), nil
	}
	return 0, fmt.Errorf("cannot store %T in an integer column", v)
}

func toFloat64(v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case float32:
		return float64(x), nil
	case json.Number:
		return x.Float64()
	}
	i, err := toInt64(v)
	if err != nil {
		return 0, fmt.Errorf("cannot store %T in a floating-point column", v)
	}
	return float64(i), nil
}
