package identity_test

import (
	"strings"
	"testing"

	"github.com/datapulse/datapulse/core/identity"
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
	}
	for _, c := range cases {
		err := identity.CheckPassword(c.pw, c.email)
		if (err == nil) != c.ok {
			t.Errorf("CheckPassword(%q, %q) = %v, want ok=%v", c.pw, c.email, err, c.ok)
		}
	}
}

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
