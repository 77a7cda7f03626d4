package host

import "testing"

// Secret values shorter than minRedactLen are ordinary words: a password
// "admin" must not turn "administrator" into "[redacted]istrator". Longer
// ones are removed wherever they appear.
func TestRedactSkipsShortSecrets(t *testing.T) {
	secrets := map[string]string{"user_password": "admin", "token": "s3cr3t-t0ken-value"}
	got := redact("administrator admin cannot log in with s3cr3t-t0ken-value", secrets)
	want := "administrator admin cannot log in with [redacted]"
	if got != want {
		t.Fatalf("redact = %q, want %q", got, want)
	}
	if got := redact("password 12345678 rejected", map[string]string{"p": "12345678"}); got != "password [redacted] rejected" {
		t.Fatalf("an 8-character secret is not redacted: %q", got)
	}
}

func TestVersionRange(t *testing.T) {
	cases := []struct {
		rng, v string
		ok     bool
	}{
		{">=0.9.0 <2.0.0", "0.9.0", true},
		{">=0.9.0 <2.0.0", "1.12.3", true},
		{">=0.9.0 <2.0.0", "2.0.0", false},
		{">=0.9.0 <2.0.0", "0.8.9", false},
		{"1.2.3", "1.2.3", true},
		{"=1.2", "1.2.0", true},
		{">1.0", "v1.0.1-rc1", true},
		{"!=1.0.0", "1.0.0", false},
	}
	for _, c := range cases {
		r, err := parseRange(c.rng)
		v, ok := parseSemver(c.v)
		if err != nil || !ok {
			t.Fatalf("%q %q: %v %v", c.rng, c.v, err, ok)
		}
		if r.allows(v) != c.ok {
			t.Errorf("%q allows %q = %v, want %v", c.rng, c.v, !c.ok, c.ok)
		}
	}
	for _, bad := range []string{"", ">=x", "~1.0", ">=1.2.3.4"} {
		if _, err := parseRange(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
