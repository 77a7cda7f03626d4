package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/datapulse/datapulse/core/errs"
	"github.com/datapulse/datapulse/core/identity/commonpw"
)

// Argon2Params are the argon2id cost parameters. The defaults follow the
// OWASP password storage recommendation (m=19 MiB, t=2, p=1): about 25 ms per
// hash on one core of the 2-core reference machine.
type Argon2Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	KeyLen    uint32
	SaltLen   int
}

// DefaultArgon2 is used for every stored password.
var DefaultArgon2 = Argon2Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// Password policy limits (NIST SP 800-63B: length over composition rules).
const (
	MinPasswordLen = 12
	MaxPasswordLen = 128
)

// localCommonPasswords are refused even when long enough: guesses an
// attacker of this product would try first. The breached-password list is
// in package commonpw.
var localCommonPasswords = map[string]bool{
	"password1234": true, "123456789012": true, "qwertyuiopas": true, "passwordpassword": true,
	"administrator": true, "letmeinletmein": true, "changemechangeme": true, "iloveyou1234": true,
	"111111111111": true, "000000000000": true, "datapulse123": true, "datapulsedatapulse": true,
	"datapulse1234": true, "datapulseadmin": true, "admindatapulse": true,
}

// CheckPassword applies the password policy to a new password; email may be
// empty. Lengths count Unicode code points after NFC normalisation, so "é"
// is one character however it was typed. Text that cannot be a real
// password is refused rather than repaired: invalid UTF-8, and U+FFFD, which
// JSON decoding puts in place of lone UTF-16 surrogates and invalid bytes.
func CheckPassword(pw, email string) error {
	if !utf8.ValidString(pw) {
		return errs.Invalid("password", "password must be valid UTF-8 text")
	}
	if strings.ContainsRune(pw, utf8.RuneError) {
		return errs.Invalid("password", "password contains U+FFFD, the replacement for invalid text (a lone UTF-16 surrogate or invalid UTF-8); send it as valid Unicode")
	}
	nfc := norm.NFC.String(pw)
	n := utf8.RuneCountInString(nfc)
	switch {
	case n < MinPasswordLen:
		return errs.Invalid("password", fmt.Sprintf("password must be at least %d characters", MinPasswordLen))
	case n > MaxPasswordLen:
		return errs.Invalid("password", fmt.Sprintf("password must be at most %d characters", MaxPasswordLen))
	}
	lower := strings.ToLower(nfc)
	if first, _ := utf8.DecodeRuneInString(lower); strings.Trim(lower, string(first)) == "" {
		return errs.Invalid("password", "password must not be one repeated character")
	}
	if localCommonPasswords[lower] || commonpw.Contains(lower) {
		return errs.Invalid("password", "password is too common: it appears in lists of breached passwords")
	}
	if local, _, _ := strings.Cut(email, "@"); local != "" {
		local = strings.ToLower(norm.NFC.String(local))
		if utf8.RuneCountInString(local) >= 4 && strings.Contains(lower, local) {
			return errs.Invalid("password", "password must not contain your email name")
		}
	}
	return nil
}

type kdf func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte

// idKeyHook, when set, replaces argon2id: tests use it to count concurrent
// computations. Atomic because services hash in background goroutines.
var idKeyHook atomic.Pointer[kdf]

func idKey(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte {
	if f := idKeyHook.Load(); f != nil {
		return (*f)(password, salt, time, memory, threads, keyLen)
	}
	return argonIDKey(password, salt, time, memory, threads, keyLen)
}

var argonIDKey = argon2.IDKey

// HashPassword returns an argon2id PHC string.
func HashPassword(pw string, p Argon2Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := idKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var errBadHash = errors.New("identity: malformed password hash")

// VerifyPassword checks pw against a PHC string made by HashPassword, using
// the parameters stored in it (so old hashes keep working after a change).
func VerifyPassword(pw, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return false, errBadHash
	}
	if p.MemoryKiB == 0 || p.MemoryKiB > 1<<22 || p.Time == 0 || p.Time > 64 || p.Threads == 0 {
		return false, errBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return false, errBadHash
	}
	got := idKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NeedsRehash reports whether encoded was made with other parameters than p.
func NeedsRehash(encoded string, p Argon2Params) bool {
	return !strings.Contains(encoded, fmt.Sprintf("$m=%d,t=%d,p=%d$", p.MemoryKiB, p.Time, p.Threads))
}
