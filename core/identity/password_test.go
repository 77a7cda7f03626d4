package identity_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/datapulse/datapulse/core/identity"
	"github.com/datapulse/datapulse/core/identity/commonpw"
)

func TestCheckPassword(t *testing.T) {
	cases := []struct {
		pw, email string
		ok        bool
	}{
		{"correct horse battery", "ada@example.com", true},
		{"short", "", false},
		{strings.Repeat("x", 11), "", false},
		{strings.Repeat("ab", 65), "", false},
		{"aaaaaaaaaaaaaaa", "", false},
		{"Password1234", "", false}, // common, case-insensitive
		{"my name is lovelace!", "lovelace@example.com", false},
		{"ada is a fine name!!", "ada@example.com", true}, // local parts under 4 characters are not checked
		{"\xff\xfe invalid utf8 !!", "", false},
		{"пароль пароль пароль", "", true},
		// Characters, not bytes (A10).
		{strings.Repeat("é", 12), "", false},                     // one repeated character of two bytes
		{strings.Repeat("e\u0301", 12), "", false},               // the same, decomposed
		{strings.Repeat("e\u0301", 6) + "abc", "", false},        // 9 characters after NFC, 15 code points
		{"ab" + strings.Repeat("é", 10), "", true},               // 12 characters, 22 bytes
		{strings.Repeat("漢字", 6), "", true},                      // 12 characters, 36 bytes
		{strings.Repeat("🙂", 129), "", false},                    // 129 characters
		{"long enough but \uFFFD inside", "", false},             // what JSON makes of a lone surrogate
		{"my name is émile!!!", "\u00c9mile@example.com", false}, // email name compared case- and NFC-insensitively
		{"my name is e\u0301mile!!!", "émile@example.com", false},
		{"ab\u00e9 is a fine name!!", "abé@example.com", true}, // 3 characters, 4 bytes: not checked
		// The breached-password list (A10), any case.
		{"1qaz2wsx3edc", "", false},
		{"QWERTY123456", "", false},
		{"unbelievable", "", false},
		{"datapulse1234", "", false},
	}
	for _, c := range cases {
		err := identity.CheckPassword(c.pw, c.email)
		if (err == nil) != c.ok {
			t.Errorf("CheckPassword(%q, %q) = %v, want ok=%v", c.pw, c.email, err, c.ok)
		}
	}
}

// TestCommonPasswordList: the embedded list is of meaningful size and every
// entry on it is refused.
func TestCommonPasswordList(t *testing.T) {
	if n := commonpw.Len(); n < 10_000 {
		t.Fatalf("common password list has %d entries", n)
	}
	zr, err := gzip.NewReader(bytes.NewReader(commonPasswordsGz))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	n := 0
	for sc.Scan() {
		n++
		pw := sc.Text()
		if utf8.RuneCountInString(pw) < identity.MinPasswordLen {
			t.Errorf("entry %q is shorter than the minimum: the list keeps only entries the length rule lets through", pw)
		}
		if err := identity.CheckPassword(pw, ""); err == nil {
			t.Errorf("listed password %q accepted", pw)
		}
		if err := identity.CheckPassword(strings.ToUpper(pw), ""); err == nil && strings.ToLower(strings.ToUpper(pw)) == pw {
			t.Errorf("listed password %q accepted in upper case", pw)
		}
	}
	if n != commonpw.Len() {
		t.Errorf("file has %d lines, set %d entries", n, commonpw.Len())
	}
}

//go:embed commonpw/common-passwords.txt.gz
var commonPasswordsGz []byte

func TestHashAndVerify(t *testing.T) {
	h, err := identity.HashPassword("correct horse battery", identity.DefaultArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash format: %s", h)
	}
	h2, _ := identity.HashPassword("correct horse battery", identity.DefaultArgon2)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		ok, err := identity.VerifyPassword(pw, h)
		if err != nil || ok != want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if identity.NeedsRehash(h, identity.DefaultArgon2) {
		t.Error("fresh hash needs rehash")
	}
	weak := identity.Argon2Params{MemoryKiB: 1024, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
	old, _ := identity.HashPassword("pw", weak)
	if ok, _ := identity.VerifyPassword("pw", old); !ok {
		t.Error("hash with other parameters does not verify")
	}
	if !identity.NeedsRehash(old, identity.DefaultArgon2) {
		t.Error("weaker hash not flagged for rehash")
	}
}

func TestVerifyRejectsMalformed(t *testing.T) {
	for _, h := range []string{
		"", "plain", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=18$m=1024,t=1,p=1$c2FsdA$a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdA$a2V5", // memory bomb
		"$argon2id$v=19$m=1024,t=1000,p=1$c2FsdA$a2V5",  // time bomb
		"$argon2id$v=19$m=1024,t=1,p=1$!!!$a2V5",
		"$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$",
	} {
		if ok, err := identity.VerifyPassword("pw", h); ok || err == nil {
			t.Errorf("VerifyPassword accepted %q: %v %v", h, ok, err)
		}
	}
}

// FuzzVerifyPassword: a stored hash is parsed; whatever it holds, parsing
// must not panic or accept.
func FuzzVerifyPassword(f *testing.F) {
	f.Add("$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=0,t=0,p=0$$")
	f.Fuzz(func(t *testing.T, h string) {
		ok, err := identity.VerifyPassword("fuzz", h)
		if ok && err != nil {
			t.Fatal("accepted with an error")
		}
	})
}

func FuzzCheckPassword(f *testing.F) {
	f.Add("correct horse battery", "a@example.com")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, pw, email string) {
		_ = identity.CheckPassword(pw, email) // must not panic
	})
}
