package resultcache

import (
	"bytes"
	"crypto/sha256"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"math"
	"reflect"
	"slices"
	"sync/atomic"
	"time"
)

// Key identifies one cached query result.
//
// DataSource is kept in clear so that Invalidate can find every entry of a
// source; it is an identifier, not a secret. Everything else (SQL, bound
// values, permission context) only exists as a SHA-256 digest, so nothing
// sensitive is retained by the cache's key space.
//
// Key is comparable and can be used as a map key.
type Key struct {
	DataSource string
	sum        [sha256.Size]byte
}

// String returns "<dataSource>:<hex digest>", suitable for logs.
func (k Key) String() string { return k.DataSource + ":" + hex.EncodeToString(k.sum[:]) }

// keyVersion is mixed into every digest so the encoding can evolve without
// ever colliding with keys produced by an older encoding.
const keyVersion = "datapulse/resultcache/v1"

// maxDepth bounds recursion through nested/pointer values. Beyond it (or for
// values that have no stable encoding: funcs, channels, unsafe pointers) the
// key is made unique, i.e. the result is effectively uncacheable. This is
// the safe failure mode: a miss, never a wrongly shared entry.
const maxDepth = 32

var uniqueSeq atomic.Uint64

// NewKey builds the cache key for a compiled query.
//
// The digest covers, each length-prefixed so fields cannot bleed into each
// other: the data source id, the compiled SQL, every bound argument in order
// with a canonical type-tagged encoding, and the permission context (e.g. the
// caller's user id or a hash of their effective rights). Two callers whose
// permission strings differ never share an entry.
//
// Canonical argument encoding:
//   - nil and nil pointers/interfaces              -> null
//   - bool                                         -> bool
//   - all signed ints, and unsigned ints ≤ MaxInt64 -> int64 (so int32(1) == int64(1) == uint8(1))
//   - unsigned ints > MaxInt64                     -> uint64
//   - float32/float64                              -> float64 bits (-0 folded to 0, one NaN)
//   - string (and named string types)              -> string
//   - []byte                                       -> bytes (distinct from string)
//   - time.Time                                    -> UTC RFC3339Nano (same instant, any zone, is equal)
//   - slices/arrays                                -> list, elements in order
//   - maps                                         -> entries sorted by encoded key
//   - structs                                      -> type name + fields in declaration order
//   - driver.Valuer                                -> encoding of Value() (what the driver sends)
//   - pointers                                     -> encoding of the pointee
//
// Type tags make 1, "1", 1.0, true and []byte("1") all distinct.
func NewKey(dataSource, sql string, args []any, permission string) Key {
	e := encoder{buf: make([]byte, 0, 128+len(sql))}
	e.str(keyVersion)
	e.str(dataSource)
	e.str(sql)
	e.uvarint(uint64(len(args)))
	for _, a := range args {
		e.value(reflect.ValueOf(a), 0)
	}
	e.str(permission)
	return Key{DataSource: dataSource, sum: sha256.Sum256(e.buf)}
}

type encoder struct{ buf []byte }

const (
	tagNull    = 'n'
	tagTrue    = 'T'
	tagFalse   = 'F'
	tagInt     = 'i'
	tagUint    = 'u'
	tagFloat   = 'f'
	tagComplex = 'c'
	tagString  = 's'
	tagBytes   = 'b'
	tagTime    = 't'
	tagList    = 'l'
	tagMap     = 'm'
	tagStruct  = 'r'
	tagUnique  = 'z'
)

var (
	timeType   = reflect.TypeFor[time.Time]()
	valuerType = reflect.TypeFor[driver.Valuer]()
)

func (e *encoder) uvarint(n uint64) { e.buf = binary.AppendUvarint(e.buf, n) }

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) tag(t byte) { e.buf = append(e.buf, t) }

func (e *encoder) u64(n uint64) { e.buf = binary.BigEndian.AppendUint64(e.buf, n) }

func (e *encoder) float(f float64) {
	if f == 0 {
		f = 0 // fold -0
	}
	if math.IsNaN(f) {
		f = math.NaN()
	}
	e.u64(math.Float64bits(f))
}

func (e *encoder) unique() {
	e.tag(tagUnique)
	e.u64(uniqueSeq.Add(1))
	e.u64(uint64(time.Now().UnixNano()))
}

func (e *encoder) value(v reflect.Value, depth int) {
	if depth > maxDepth {
		e.unique()
		return
	}
	if !v.IsValid() {
		e.tag(tagNull)
		return
	}
	t := v.Type()
	if t == timeType {
		e.tag(tagTime)
		e.str(v.Interface().(time.Time).UTC().Format(time.RFC3339Nano))
		return
	}
	if t.Implements(valuerType) && v.CanInterface() {
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			e.tag(tagNull)
			return
		}
		dv, err := v.Interface().(driver.Valuer).Value()
		if err != nil {
			e.unique()
			return
		}
		e.value(reflect.ValueOf(dv), depth+1)
		return
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			e.tag(tagTrue)
		} else {
			e.tag(tagFalse)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.tag(tagInt)
		e.u64(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u <= math.MaxInt64 {
			e.tag(tagInt)
		} else {
			e.tag(tagUint)
		}
		e.u64(u)
	case reflect.Float32, reflect.Float64:
		e.tag(tagFloat)
		e.float(v.Float())
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		e.tag(tagComplex)
		e.float(real(c))
		e.float(imag(c))
	case reflect.String:
		e.tag(tagString)
		e.str(v.String())
	case reflect.Slice:
		if v.IsNil() {
			e.tag(tagNull)
			return
		}
		if t.Elem().Kind() == reflect.Uint8 {
			e.tag(tagBytes)
			e.uvarint(uint64(v.Len()))
			e.buf = append(e.buf, v.Bytes()...)
			return
		}
		e.list(v, depth)
	case reflect.Array:
		e.list(v, depth)
	case reflect.Map:
		if v.IsNil() {
			e.tag(tagNull)
			return
		}
		type kv struct{ k, v []byte }
		pairs := make([]kv, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			ke := encoder{}
			ke.value(it.Key(), depth+1)
			ve := encoder{}
			ve.value(it.Value(), depth+1)
			pairs = append(pairs, kv{ke.buf, ve.buf})
		}
		slices.SortFunc(pairs, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		e.tag(tagMap)
		e.uvarint(uint64(len(pairs)))
		for _, p := range pairs {
			e.buf = append(e.buf, p.k...)
			e.buf = append(e.buf, p.v...)
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			e.tag(tagNull)
			return
		}
		e.value(v.Elem(), depth+1)
	case reflect.Struct:
		e.tag(tagStruct)
		e.str(t.PkgPath() + "." + t.String())
		e.uvarint(uint64(v.NumField()))
		for i := range v.NumField() {
			e.value(v.Field(i), depth+1)
		}
	default: // Chan, Func, UnsafePointer: no stable value
		e.unique()
	}
}

func (e *encoder) list(v reflect.Value, depth int) {
	e.tag(tagList)
	e.uvarint(uint64(v.Len()))
	for i := range v.Len() {
		e.value(v.Index(i), depth+1)
	}
}
