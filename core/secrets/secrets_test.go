package secrets_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/datapulse/datapulse/core/secrets"
)

func TestSealOpen(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	b, err := secrets.New(key)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := b.Seal("hunter2", "data_source/1/password")
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := b.Seal("hunter2", "data_source/1/password")
	if s1 == s2 {
		t.Fatal("two seals of one value are equal: nonce reused")
	}
	if strings.Contains(s1, "hunter2") {
		t.Fatal("plaintext visible in ciphertext")
	}
	if got, err := b.Open(s1, "data_source/1/password"); err != nil || got != "hunter2" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := secrets.New([]byte(strings.Repeat("x", 32)))
	tampered := s1[:len(s1)-2] + "AA"
	for name, open := range map[string]func() (string, error){
		"other binding": func() (string, error) { return b.Open(s1, "data_source/2/password") },
		"other field":   func() (string, error) { return b.Open(s1, "data_source/1/token") },
		"other key":     func() (string, error) { return other.Open(s1, "data_source/1/password") },
		"tampered":      func() (string, error) { return b.Open(tampered, "data_source/1/password") },
		"garbage":       func() (string, error) { return b.Open("v1:!!", "data_source/1/password") },
		"no prefix":     func() (string, error) { return b.Open("hunter2", "data_source/1/password") },
		"truncated":     func() (string, error) { return b.Open("v1:AAAA", "data_source/1/password") },
	} {
		if v, err := open(); !errors.Is(err, secrets.ErrDecrypt) || v != "" {
			t.Errorf("%s: %q, %v; want ErrDecrypt", name, v, err)
		}
	}
	if _, err := secrets.New([]byte("short")); err == nil {
		t.Error("short key accepted")
	}
}

func FuzzOpen(f *testing.F) {
	b, _ := secrets.New([]byte(strings.Repeat("k", 32)))
	s, _ := b.Seal("x", "b")
	f.Add(s, "b")
	f.Add("v1:", "")
	f.Fuzz(func(t *testing.T, sealed, binding string) {
		if v, err := b.Open(sealed, binding); err == nil && (sealed != s || binding != "b" || v != "x") && !strings.HasPrefix(sealed, "v1:") {
			t.Fatalf("opened %q", sealed)
		}
	})
}
