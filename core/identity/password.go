package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/datapulse/datapulse/core/errs"
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

// commonPasswords are refused even when long enough.
var commonPasswords = map[string]bool{
	"password1234": true, "123456789012": true, "qwertyuiopas": true, "passwordpassword": true,
	"administrator": true, "letmeinletmein": true, "changemechangeme": true, "iloveyou1234": true,
	"111111111111": true, "000000000000": true, "datapulse123": true, "datapulsedatapulse": true,
}

// CheckPassword applies the password policy; email may be empty.
func CheckPassword(pw, email string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case !utf8.ValidString(pw):
		return errs.Invalid("password", "password must be valid UTF-8")
	case n < MinPasswordLen:
		return errs.Invalid("password", fmt.Sprintf("password must be at least %d characters", MinPasswordLen))
	case n > MaxPasswordLen:
		return errs.Invalid("password", fmt.Sprintf("password must be at most %d characters", MaxPasswordLen))
	case commonPasswords[strings.ToLower(pw)]:
		return errs.Invalid("password", "password is too common")
	case email != "" && strings.Contains(strings.ToLower(pw), strings.ToLower(strings.SplitN(email, "@", 2)[0])) && len(strings.SplitN(email, "@", 2)[0]) >= 4:
		return errs.Invalid("password", "password must not contain your email name")
	case strings.Count(pw, string([]rune(pw)[0])) == len(pw):
		return errs.Invalid("password", "password must not be one repeated character")
	}
	return nil
}

// HashPassword returns an argon2id PHC string.
func HashPassword(pw string, p Argon2Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
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
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// NeedsRehash reports whether encoded was made with other parameters than p.
func NeedsRehash(encoded string, p Argon2Params) bool {
	return !strings.Contains(encoded, fmt.Sprintf("$m=%d,t=%d,p=%d$", p.MemoryKiB, p.Time, p.Threads))
}
