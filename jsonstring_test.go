package main

import (
	"strings"
	"testing"
)

// plainWord must pass a word just when each of its bytes is plain, with
// any one or two bytes of it set to any value: a borrow from one failing
// byte must not hide another, nor a plain word fail.
func TestPlainWordIsExact(t *testing.T) {
	word := func(b [8]byte) uint64 {
		var w uint64
		for k := 7; k >= 0; k-- {
			w = w<<8 | uint64(b[k])
		}
		return w
	}
	for i := range 8 {
		for j := i; j < 8; j++ {
			for c := range 256 {
				for d := range 256 {
					b := [8]byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}
					b[i], b[j] = byte(c), byte(d)
					want := plainASCII[b[i]] && plainASCII[b[j]]
					if got := plainWord(word(b)); got != want {
						t.Fatalf("plainWord(%q) = %t, want %t", b[:], got, want)
					}
				}
			}
		}
	}
}

func TestPlainRun(t *testing.T) {
	tests := []struct {
		s    string
		from int
		want int
	}{
		{"", 0, 0},
		{"abc", 0, 3},
		{"abcdefgh", 0, 8},
		{"abcdefghijklmnopq", 0, 17},
		{`abcdefghij"kl`, 0, 10},
		{`abcdefghij"kl`, 11, 13},
		{"abc\\defghijkl", 0, 3},
		{"abcdefg\x1fhijklmno", 0, 7},
		{"abcdefgh\x7fijklmno", 0, 16},
		{"abcdefghijklmnopé", 0, 16},
		{"\xffabcdefghijk", 0, 0},
		{strings.Repeat("x", 100) + "\n", 3, 100},
	}
	for _, tt := range tests {
		if got := plainRun(tt.s, tt.from); got != tt.want {
			t.Errorf("plainRun(%q, %d) = %d, want %d", tt.s, tt.from, got, tt.want)
		}
		if got := plainRun([]byte(tt.s), tt.from); got != tt.want {
			t.Errorf("plainRun([]byte(%q), %d) = %d, want %d", tt.s, tt.from, got, tt.want)
		}
	}
}
