package resultcache

import (
	"database/sql/driver"
	"testing"
	"time"
)

type valuer struct{ s string }

func (v valuer) Value() (driver.Value, error) { return v.s, nil }

type status string

func TestKeyDistinguishes(t *testing.T) {
	const ds, q = "pg-main", "SELECT sum(x) FROM t WHERE a = $1 AND b = $2"
	base := NewKey(ds, q, []any{1, "a"}, "user:1")
	cases := map[string]Key{
		"permission":    NewKey(ds, q, []any{1, "a"}, "user:2"),
		"arg type":      NewKey(ds, q, []any{"1", "a"}, "user:1"),
		"float vs int":  NewKey(ds, q, []any{1.0, "a"}, "user:1"),
		"bool vs int":   NewKey(ds, q, []any{true, "a"}, "user:1"),
		"bytes vs str":  NewKey(ds, q, []any{1, []byte("a")}, "user:1"),
		"arg order":     NewKey(ds, q, []any{"a", 1}, "user:1"),
		"nil vs empty":  NewKey(ds, q, []any{1, nil}, "user:1"),
		"extra arg":     NewKey(ds, q, []any{1, "a", nil}, "user:1"),
		"sql":           NewKey(ds, q+" ", []any{1, "a"}, "user:1"),
		"data source":   NewKey("pg-other", q, []any{1, "a"}, "user:1"),
		"list order":    NewKey(ds, q, []any{[]int{1, 2}, "a"}, "user:1"),
		"field bleed":   NewKey(ds, q, []any{1, "a"}, "user:1"+"x"),
		"string bleed":  NewKey(ds, q, []any{1, "a", "b"}, "user:1"),
		"string concat": NewKey(ds, q, []any{1, "ab"}, "user:1"),
	}
	seen := map[Key]string{base: "base"}
	for name, k := range cases {
		if prev, dup := seen[k]; dup {
			t.Errorf("%s: key equals %s", name, prev)
		}
		seen[k] = name
	}
	if NewKey(ds, q, []any{[]int{1, 2}}, "u") == NewKey(ds, q, []any{[]int{2, 1}}, "u") {
		t.Error("list order ignored")
	}
	// Splitting between fields must not collide.
	if NewKey("ab", "c", nil, "") == NewKey("a", "bc", nil, "") {
		t.Error("data source / sql boundary collides")
	}
}

func TestKeyCanonical(t *testing.T) {
	const ds, q = "pg", "SELECT 1"
	same := func(name string, a, b []any) {
		t.Helper()
		if NewKey(ds, q, a, "u") != NewKey(ds, q, b, "u") {
			t.Errorf("%s: expected equal keys", name)
		}
	}
	same("deterministic", []any{1, "x", 2.5, nil, true}, []any{1, "x", 2.5, nil, true})
	same("int widths", []any{int32(7)}, []any{int64(7)})
	same("unsigned", []any{uint8(7)}, []any{7})
	same("pointer", []any{new(int)}, []any{0})
	same("nil pointer", []any{(*int)(nil)}, []any{nil})
	same("named string", []any{status("open")}, []any{"open"})
	same("valuer", []any{valuer{"v"}}, []any{"v"})
	same("map order", []any{map[string]int{"a": 1, "b": 2, "c": 3}}, []any{map[string]int{"c": 3, "b": 2, "a": 1}})
	same("array vs slice", []any{[2]int{1, 2}}, []any{[]int{1, 2}})
	same("negative zero", []any{0.0}, []any{-1 * 0.0})

	utc := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	paris := utc.In(time.FixedZone("CET", 3600))
	same("time zone", []any{utc}, []any{paris})
	if NewKey(ds, q, []any{utc}, "u") == NewKey(ds, q, []any{utc.Add(time.Nanosecond)}, "u") {
		t.Error("nanoseconds ignored")
	}
	if NewKey(ds, q, []any{utc}, "u") == NewKey(ds, q, []any{utc.Format(time.RFC3339Nano)}, "u") {
		t.Error("time and its string collide")
	}

	// Values without a stable encoding are uncacheable (unique keys).
	ch := make(chan int)
	if NewKey(ds, q, []any{ch}, "u") == NewKey(ds, q, []any{ch}, "u") {
		t.Error("chan should yield unique keys")
	}
	// Self-referential values do not hang or panic.
	type node struct{ Next *node }
	n := &node{}
	n.Next = n
	_ = NewKey(ds, q, []any{n}, "u")
}

func TestKeyHidesSecrets(t *testing.T) {
	k := NewKey("pg", "SELECT secret_column", []any{"hunter2"}, "perm-hash-123")
	s := k.String()
	for _, secret := range []string{"secret_column", "hunter2", "perm-hash-123"} {
		if contains(s, secret) {
			t.Errorf("key string %q exposes %q", s, secret)
		}
	}
	if k.DataSource != "pg" {
		t.Errorf("DataSource = %q", k.DataSource)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
