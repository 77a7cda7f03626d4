// Package secrets encrypts values at rest (data source passwords, tokens)
// with AES-256-GCM. Each value is bound to where it is stored: opening it
// under another binding (another row or field) fails, so a ciphertext copied
// between rows is useless.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/hkdf"
)

// prefix versions the format so keys or algorithms can change later.
const prefix = "v1:"

// ErrDecrypt means a value could not be opened: wrong key, wrong binding or
// tampered ciphertext. It never says which.
var ErrDecrypt = errors.New("secrets: cannot decrypt value")

// Box seals and opens values with a key derived from the data-encryption key.
type Box struct{ aead cipher.AEAD }

// New derives the AES-256 key from the data-encryption key with HKDF-SHA256,
// so the configured key material is never used directly.
func New(masterKey []byte) (*Box, error) {
	if len(masterKey) < 32 {
		return nil, errors.New("secrets: encryption key shorter than 32 bytes")
	}
	key := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, masterKey, nil, []byte("datapulse secrets v1")), key); err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to binding (e.g. "data_source/<id>/password").
func (b *Box) Seal(plaintext, binding string) (string, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := b.aead.Seal(nonce, nonce, []byte(plaintext), []byte(binding))
	return prefix + base64.RawStdEncoding.EncodeToString(ct), nil
}

// Open decrypts a value sealed under the same binding.
func (b *Box) Open(sealed, binding string) (string, error) {
	raw, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", fmt.Errorf("%w: unknown format", ErrDecrypt)
	}
	ct, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(ct) < b.aead.NonceSize()+b.aead.Overhead() {
		return "", ErrDecrypt
	}
	n := b.aead.NonceSize()
	pt, err := b.aead.Open(nil, ct[:n], ct[n:], []byte(binding))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(pt), nil
}
