package sdk

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// PageOf returns one page of items, which must be in a stable order, with
// offset-based tokens. It suits connectors that list everything and cut:
// a directory, a small catalog. An invalid token is a CodeInvalidArgument
// error.
func PageOf[T any](items []T, p Page) (page []T, next string, err error) {
	off := 0
	if p.Token != "" {
		off, err = decodeOffsetToken(p.Token)
		if err != nil || off > len(items) {
			return nil, "", Errorf(CodeInvalidArgument, "invalid page token")
		}
	}
	size := p.Size
	if size <= 0 {
		size = DefaultPageSize
	}
	end := min(off+size, len(items))
	if end < len(items) {
		next = EncodeOffsetToken(end)
	}
	return items[off:end], next, nil
}

const offsetTokenPrefix = "off:"

// EncodeOffsetToken makes an opaque page token for an offset.
func EncodeOffsetToken(off int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(offsetTokenPrefix + strconv.Itoa(off)))
}

// DecodeOffsetToken reads a token made by EncodeOffsetToken.
func DecodeOffsetToken(tok string) (int, error) { return decodeOffsetToken(tok) }

func decodeOffsetToken(tok string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(string(b), offsetTokenPrefix)
	if !ok {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, strconv.ErrSyntax
	}
	return n, nil
}
