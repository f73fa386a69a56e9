package password

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

func TestCommonList(t *testing.T) {
	list := common()
	if len(list) != 49233 {
		t.Errorf("the list has %d entries, want the 49233 of zxcvbn-ts 4.1.3 (rebuilt? update common_passwords.md and this test)", len(list))
	}
	for i, e := range list {
		if e == "" || normalize(e) != e {
			t.Errorf("entry %d %q is not normalised", i, e)
		}
		if i > 0 && list[i-1] >= e {
			t.Fatalf("entries %d %q and %d %q are not sorted and unique: the binary search needs both", i-1, list[i-1], i, e)
		}
	}
	// The most frequent passwords of the source, in its order.
	for _, pw := range []string{"123456", "password", "12345678", "qwerty", "123456789", "dragon", "letmein", "iloveyou", "trustno1"} {
		if !listed(pw) {
			t.Errorf("%q is not on the list", pw)
		}
	}
}

func TestIsCommon(t *testing.T) {
	for _, tc := range []struct {
		pw     string
		common bool
	}{
		// On the list, and the 12+ character variants a length rule lets through.
		{"password", true},
		{"123456", true},
		{"qwerty", true},
		{"iloveyou", true},
		{"password1234", true},
		{"qwertyuiop123", true},
		{"iloveyou2024!", true},
		{"qwertyuiop!!", true},
		{"monkey!!!!!!", true},
		{"trustno1!!!!", true},
		{"1qaz2wsx3edc", true},
		{"unbelievable", true},
		{"193570356033", true}, // listed, no letter: an exact match is enough
		{"123456789012", true},
		// Case, surrounding and inner white space do not matter.
		{"PASSWORD1234", true},
		{"PassWord1234", true},
		{"  password1234  ", true},
		{"pass word 1234", true},
		{"I Love You 2024", true},
		{"\tQwerty Uiop 123\n", true},
		// A listed password repeated, and followed by a longer pattern.
		{"monkeymonkey", true},
		{"passwordpassword1", true},
		{"password1234567890", true},
		{"password!!!!!!!!!!", true},
		// Patterns (IsPattern).
		{"aaaaaaaaaaaa", true},
		{"abcdefghijkl", true},
		{"aaaaaaaa1234", true},
		// Not common: a passphrase, a listed word with a longer random
		// tail, a word inside a longer password, a random string.
		{"correct horse battery", false},
		{"monkey staple orbit canyon", false},
		{"love!9$2#7@5", false},
		{"mypasswordisgreen", false},
		{"passwordmonkey", false},
		{"xk2!Rv9#qLw4", false},
		{"199058392017", false}, // "1990" is listed, but is no letter: a random number stays possible
		{"2727783851", false},   // "27" twice is no repetition to append to
		{"", false},
		{"   ", false},
	} {
		if got := IsCommon(tc.pw); got != tc.common {
			t.Errorf("IsCommon(%q) = %v, want %v", tc.pw, got, tc.common)
		}
	}
}

func TestIsPattern(t *testing.T) {
	for _, tc := range []struct {
		pw      string
		pattern bool
	}{
		{"aaaaaaaaaaaa", true},
		{"AAAAAAAAAAAA", true},
		{"ääääääääääää", true},
		{"            x", false}, // white space does not count: "x"
		{"abababababab", true},
		{"x9!qx9!qx9!q", true},
		{"abcabcabcab", true}, // the last copy cut short
		{"abcdefghijkl", true},
		{"ABCDEFGHIJKL", true},
		{"lkjihgfedcba", true},
		{"xyzabcdefghi", true}, // wraps around
		{"123456789012", true},
		{"098765432109", true},
		{"qwertyuiopas", true},
		{"poiuytrewq12", true},
		{"!@#$%^&*()!@", true},
		{"abcdefabcdef", true},
		{"123123123123", true},
		{"aaaaaaaa1234", true},
		{"abcdefgh!!!!", true},
		{"1234567890!!", true},
		{"111111!!!!!!", true},
		{"345345319426", true}, // a run repeated, then no more digits than that
		// Not patterns.
		{"x9!qx9!qrt5%", false},
		{"aaaa58392017", false}, // more random digits than the pattern has characters
		{"abcd!9$2#7@5", false},
		{"acegikmoqsuw", false},
		{"password1234", false}, // common, but no pattern
		{"correct horse battery", false},
		{"583920174628", false},
		{"ab", false},
		{"", false},
	} {
		if got := IsPattern(tc.pw); got != tc.pattern {
			t.Errorf("IsPattern(%q) = %v, want %v", tc.pw, got, tc.pattern)
		}
		if tc.pattern && !IsCommon(tc.pw) {
			t.Errorf("IsPattern(%q) but not IsCommon", tc.pw)
		}
	}
}

func TestIsVariantOf(t *testing.T) {
	words := []string{"alice.smith", "Alice.Smith@Example.com", "", "alice"}
	for _, tc := range []struct {
		pw      string
		variant bool
	}{
		{"alice.smith", true},
		{"Alice.Smith", true},
		{"alice.smith@example.com", true},
		{"ALICE.SMITH@EXAMPLE.COM!", true},
		{"alice.smith2024!", true},
		{"alice2024!", true},
		{"alice!!!!!!!!!!", true},
		{"alice#7@2!91%4", false}, // more random symbols than the word has letters
		{"alicealicealice", true},
		{"alice.smithalice.smith", true},
		{"alice smith", false}, // "alicesmith" is neither word
		{"alice in wonderland", false},
		{"correct horse battery", false},
		{"", false},
	} {
		if got := IsVariantOf(tc.pw, words...); got != tc.variant {
			t.Errorf("IsVariantOf(%q, %q) = %v, want %v", tc.pw, words, got, tc.variant)
		}
	}
	if IsVariantOf("bob12345678", "bob") {
		t.Error(`IsVariantOf("bob12345678", "bob"): a word of three letters followed by digits counts`)
	}
	if !IsVariantOf("bob", "bob") {
		t.Error(`IsVariantOf("bob", "bob") = false`)
	}
	if IsVariantOf("anything at all", "", " ") {
		t.Error("IsVariantOf with empty words = true")
	}
}

// passphraseWords are words for random passphrases, each of them on the
// list: a passphrase of common words is not common.
var passphraseWords = strings.Fields(`monkey dragon orange purple summer winter
	garden silver yellow castle little flower cookie banana master secret
	shadow thunder rabbit spider butter coffee pepper ginger hunter soccer
	jordan eagle tiger falcon maple river forest planet rocket pirate wizard`)

func TestRandomPassphrasesAreNotCommon(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		var words []string
		for j := 0; j < 4; j++ {
			words = append(words, passphraseWords[rng.IntN(len(passphraseWords))])
		}
		for _, pw := range []string{strings.Join(words, " "), strings.Join(words, "-"), strings.Join(words, "")} {
			if IsCommon(pw) {
				t.Errorf("IsCommon(%q) = true for a random passphrase", pw)
			}
		}
	}
	for _, w := range passphraseWords {
		if !listed(w) {
			t.Errorf("%q is not on the list: choose a listed word", w)
		}
	}
}

func TestRandomPasswordsAreNotCommon(t *testing.T) {
	const printable = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 20000; i++ {
		b := make([]byte, 12)
		for j := range b {
			b[j] = printable[rng.IntN(len(printable))]
		}
		if IsCommon(string(b)) {
			t.Errorf("IsCommon(%q) = true for a random password", b)
		}
	}
}

// TestCommonMemory reports what the decompressed list takes; it fails if a
// change makes it much larger than the 1.2 MB the comment on common says.
func TestCommonMemory(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	list := load()
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := after.HeapAlloc - before.HeapAlloc
	t.Logf("%d entries, %d bytes gzipped, %.2f MB on the heap", len(list), len(commonGz), float64(used)/1e6)
	if used > 2e6 {
		t.Errorf("the list takes %d bytes on the heap, want at most 2 MB", used)
	}
	runtime.KeepAlive(list)
}

func BenchmarkLoadCommon(b *testing.B) {
	for b.Loop() {
		load()
	}
}

func BenchmarkIsCommon(b *testing.B) {
	common() // load once, outside the timing
	rng := rand.New(rand.NewPCG(5, 6))
	digits := make([]byte, 1024)
	for i := range digits {
		digits[i] = byte('0' + rng.IntN(10))
	}
	for _, pw := range []string{"password1234", "correct horse battery staple", "xk2!Rv9#qLw4", "199058392017",
		strings.Repeat("monkey staple ", 73), "a" + string(digits[1:]), strings.Repeat("!", 1024)} {
		name := pw
		if len(name) > 30 {
			name = fmt.Sprintf("%.10s...(%d)", name, len(name))
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				IsCommon(pw)
			}
		})
	}
}
