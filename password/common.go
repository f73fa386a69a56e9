package password

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"io"
	"slices"
	"strings"
	"sync"
	"unicode"
)

// commonGz holds the common passwords, normalised, sorted and one a line:
// the 49,233 of the zxcvbn-ts "passwords-common" list, each seen more than
// ten times in 10 million leaked passwords. Where it comes from, its
// licence (MIT) and how to rebuild it are in common_passwords.md.
//
//go:embed common_passwords.txt.gz
var commonGz []byte

// common is the list, decompressed on first use and kept: about 1.2 MB, the
// text and a string header an entry.
var common = sync.OnceValue(load)

// load decompresses the list. The entries share the text's memory; the file
// is sorted already, ready for a binary search.
func load() []string {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		panic("password: the embedded common password list is corrupt: " + err.Error())
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		panic("password: the embedded common password list is corrupt: " + err.Error())
	}
	return strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
}

// minStem is the fewest characters a tail may follow: with "dog" or "123"
// followed by digits common, too many random passwords would be.
const minStem = 4

// IsCommon reports whether pw is a password attackers try first, as NIST SP
// 800-63B 5.1.1.2 asks a verifier to refuse. pw is compared lower-cased and
// without white space ("Pass Word" is "password"), and is common when it
//
//   - is on the list of common passwords ("iloveyou", "1qaz2wsx3edc"),
//     or such a password repeated ("monkeymonkey");
//   - is a pattern (see IsPattern): one character or a short piece
//     repeated, or a run of letters, digits or keys in order;
//   - is either of these followed by a tail of digits, symbols and spaces
//     ("password1234", "qwertyuiop!!", "iloveyou 2024!", "abcdefgh1234").
//     What the tail follows has at least four characters, and at least as
//     many as the tail unless the tail is a pattern too
//     ("password1234567890"); a listed password a tail follows has a
//     letter. Without these limits a random number would often be common:
//     "2727783851" ("2727" is a repetition), "199058392017" ("1990" is
//     listed).
//
// Containing a common password or a dictionary word is not enough: a
// passphrase such as "monkey staple orbit canyon" is not common.
func IsCommon(pw string) bool {
	p := normalize(pw)
	if p == "" {
		return false
	}
	letter := strings.IndexFunc(p, unicode.IsLetter)
	return variant(p, func(pc piece) bool {
		if isPattern(pc) {
			return true
		}
		if len(pc.s) < len(p) && (letter < 0 || letter >= len(pc.s)) {
			return false // a tail follows no letter
		}
		return listed(pc.s) || listed(pc.unit)
	})
}

// IsPattern reports whether pw, compared as IsCommon compares, is one
// character or a piece of at most four repeated at least three times
// ("aaaaaaaaaaaa", "abababababab", "x9!qx9!qx9!q"), a run of letters,
// digits or keys in order, forwards or backwards ("abcdefghijkl",
// "123456789012", "zyxwvutsrqpo", "qwertyuiopas", "!@#$%^&*()"), a run
// repeated ("abcdefabcdef", "123123"), or any of these followed by a tail
// of digits and symbols as IsCommon allows ("aaaaaaaa1234"). IsCommon is
// true of every such password; IsPattern lets a caller say why it refuses
// one.
func IsPattern(pw string) bool {
	p := normalize(pw)
	return p != "" && variant(p, isPattern)
}

// IsVariantOf reports whether pw, compared as IsCommon compares, is one of
// words, or one of them repeated or followed by a tail of digits and
// symbols as IsCommon allows ("alice2024!" for alice): for the
// context-specific words NIST SP 800-63B asks a verifier to refuse, such as
// the user's own username and e-mail address. Empty words are ignored.
func IsVariantOf(pw string, words ...string) bool {
	p := normalize(pw)
	if p == "" {
		return false
	}
	set := make([]string, 0, len(words))
	for _, w := range words {
		if w := normalize(w); w != "" {
			set = append(set, w)
		}
	}
	return variant(p, func(pc piece) bool {
		return slices.Contains(set, pc.s) || pc.unit != "" && slices.Contains(set, pc.unit)
	})
}

// normalize is the form passwords are compared in: lower case, with no white
// space, so that "Pass Word" is the listed "password". gen_common.go writes
// the list in this form.
func normalize(pw string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, pw)
}

// piece is a password, the part of one that a tail follows, or a tail, with
// its shortest period.
type piece struct {
	s    string
	n    int    // the number of characters in s
	unit string // the shortest piece s is made of, repeated at least twice; "" if none
	k    int    // the number of characters in unit
}

// variant reports whether base is true of p, or of p less a tail of
// characters that are not letters (digits, symbols): it tries p without
// one, two, ... of its trailing non-letters, down to minStem characters,
// and as far as the tail is no longer than what it follows or is a pattern
// itself. Its time is linear in the length of p but for the calls of base
// and isRun, which mostly stop at the first characters: a password of 1024
// digits costs little.
func variant(p string, base func(piece) bool) bool {
	r := []rune(p)
	n := len(r)
	at := make([]int, 0, n+1) // at[i] is where r[i] starts in p
	for i := range p {
		at = append(at, i)
	}
	at = append(at, len(p))
	// The shortest period of a string is its length less its longest
	// border: border[i] gives it for every prefix of p, tailBorder for
	// every trailing run of non-letters.
	border := borders(r)
	prefix := func(m int) piece {
		pc := piece{s: p[:at[m]], n: m}
		if k := m - border[m-1]; k <= m/2 {
			pc.unit, pc.k = p[:at[k]], k
		}
		return pc
	}
	if base(prefix(n)) {
		return true
	}
	t := 0
	for t < n && !unicode.IsLetter(r[n-1-t]) {
		t++
	}
	if t == 0 {
		return false
	}
	reversed := slices.Clone(r[n-t:])
	slices.Reverse(reversed)
	tailBorder := borders(reversed)
	for tail := 1; tail <= t && n-tail >= minStem; tail++ {
		m := n - tail
		if tail > m {
			tp := piece{s: p[at[m]:], n: tail}
			if k := tail - tailBorder[tail-1]; k <= tail/2 {
				tp.unit, tp.k = p[at[m]:at[m+k]], k
			}
			if !isPattern(tp) {
				continue
			}
		}
		if base(prefix(m)) {
			return true
		}
	}
	return false
}

// borders returns, for each i, the length of the longest proper prefix of
// r[:i+1] that is also its suffix, as Knuth, Morris and Pratt compute it.
func borders(r []rune) []int {
	b := make([]int, len(r))
	for i, k := 1, 0; i < len(r); i++ {
		for k > 0 && r[i] != r[k] {
			k = b[k-1]
		}
		if r[i] == r[k] {
			k++
		}
		b[i] = k
	}
	return b
}

func listed(s string) bool {
	if s == "" {
		return false
	}
	_, ok := slices.BinarySearch(common(), s)
	return ok
}

// isPattern reports whether pc is a run, a run repeated, or a piece of at
// most four characters repeated at least three times (twice would make a
// random number such as "2727783851" a pattern too often).
func isPattern(pc piece) bool {
	return isRun(pc.s) || pc.unit != "" && (isRun(pc.unit) || pc.k <= 4 && pc.n >= 3*pc.k)
}

// runs are the orders people type characters in: the alphabet, the digits,
// the letter keys row by row and the shifted digit keys. A run may wrap
// around ("xyzabc", "7890123").
var runs = []string{
	"abcdefghijklmnopqrstuvwxyz",
	"0123456789",
	"qwertyuiopasdfghjklzxcvbnm",
	"!@#$%^&*()",
}

// isRun reports whether s has at least three characters, each the one after
// the character before it in one of runs, or each the one before.
func isRun(s string) bool {
	if len(s) < 3 {
		return false
	}
	for _, order := range runs {
		for _, step := range []int{1, len(order) - 1} {
			if followsIn(s, order, step) {
				return true
			}
		}
	}
	return false
}

// followsIn reports whether each byte of s is step places after the one
// before it in order (all ASCII), wrapping around.
func followsIn(s, order string, step int) bool {
	at := strings.IndexByte(order, s[0])
	if at < 0 {
		return false
	}
	for i := 1; i < len(s); i++ {
		at = (at + step) % len(order)
		if s[i] != order[at] {
			return false
		}
	}
	return true
}
