// Package commonpw embeds a list of breached/common passwords (see README.md
// for its source and licence).
package commonpw

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"sync"
)

//go:embed common-passwords.txt.gz
var listGz []byte

var (
	once sync.Once
	set  map[string]struct{}
)

func load() {
	zr, err := gzip.NewReader(bytes.NewReader(listGz))
	if err != nil {
		panic("commonpw: embedded list is corrupt: " + err.Error())
	}
	set = make(map[string]struct{}, 12_500)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		set[sc.Text()] = struct{}{}
	}
	if err := sc.Err(); err != nil {
		panic("commonpw: embedded list is corrupt: " + err.Error())
	}
}

// Contains reports whether pw is on the list. pw must already be in the
// list's form: NFC-normalised and lower-cased. The list is decompressed on
// the first call.
func Contains(pw string) bool {
	once.Do(load)
	_, ok := set[pw]
	return ok
}

// Len is the number of passwords on the list.
func Len() int {
	once.Do(load)
	return len(set)
}
