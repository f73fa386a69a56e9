//go:build ignore

// gen_common writes common_passwords.txt.gz from the passwords.json of the
// npm package @zxcvbn-ts/language-common (see common_passwords.md):
//
//	cd /tmp && npm pack @zxcvbn-ts/language-common@4.1.3 && tar xzf zxcvbn-ts-language-common-4.1.3.tgz
//	cd /path/to/idp/password && go run gen_common.go /tmp/package/src/passwords.json
//
// It normalises each entry as IsCommon normalises a password (lower case, no
// white space), drops empty entries and repeats, sorts them in byte order
// (the source is ordered by frequency; sorted, the file gzips to 30% less
// and loads without a sort, ready for a binary search) and writes one entry
// a line, gzipped without a name or time so that the same input gives the
// same file.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"unicode"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run gen_common.go path/to/passwords.json")
		os.Exit(2)
	}
	if err := run(os.Args[1], "common_passwords.txt.gz"); err != nil {
		fmt.Fprintln(os.Stderr, "gen_common:", err)
		os.Exit(1)
	}
}

func run(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var entries []string
	if err := json.Unmarshal(data, &entries); err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	seen := make(map[string]bool, len(entries))
	var kept []string
	for _, e := range entries {
		// The same normalisation as normalize in common.go.
		e = strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return unicode.ToLower(r)
		}, e)
		if e == "" || seen[e] {
			continue
		}
		seen[e] = true
		kept = append(kept, e)
	}
	slices.Sort(kept)
	var text bytes.Buffer
	for _, e := range kept {
		text.WriteString(e)
		text.WriteByte('\n')
	}
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(text.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(dst, out.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: %d entries of %d, %d bytes of text, %d bytes gzipped\n", dst, len(kept), len(entries), text.Len(), out.Len())
	return nil
}
