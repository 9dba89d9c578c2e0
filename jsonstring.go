package main

import "unicode/utf8"

// JSON strings, written and read eight bytes at a time where they are
// plain: most of a request body's or a stored collection's text is.

// appendJSONString appends s as a JSON string, escaped as slog's
// JSONHandler escapes it: \", \\, \n, \r, \t, \u00XX for the other control
// bytes, \ufffd for each byte that is not UTF-8, and U+2028 and U+2029
// escaped; everything else as it is. Runs of plain bytes (plainRun) are
// copied whole.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if i = plainRun(s, i); i == len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plainRun returns where the run of plain bytes that starts at i ends:
// the bytes 0x20 to 0x7f but the quote and the backslash, which a JSON
// string holds as they are and which need no UTF-8 decoding. It reads eight bytes
// at a time, as one word.
func plainRun[T ~string | ~[]byte](s T, i int) int {
	for ; i+8 <= len(s); i += 8 {
		// One 8-byte load, checked once: the compiler combines these.
		b := s[i : i+8]
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		if !plainWord(w) {
			break
		}
	}
	for i < len(s) && plainASCII[s[i]] {
		i++
	}
	return i
}

// plainWord reports whether each byte of w is plain (see plainRun). Each
// test sets a byte's top bit when that byte fails it: one below 0x20
// (subtracting 0x20 wraps it), a quote or a backslash (XOR makes it 0,
// and subtracting 1 wraps it), one of 0x80 or more (its own top bit). A
// subtraction borrows from the next byte only where it wrapped, at a
// byte that failed: so a word passes just when all its bytes are plain.
func plainWord(w uint64) bool {
	const ones, tops = 0x0101010101010101, 0x8080808080808080
	quote, backslash := w^(ones*'"'), w^(ones*'\\')
	return (w|(w-ones*0x20)|(quote-ones)|(backslash-ones))&tops == 0
}

// plainASCII is plainRun's test of one byte.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
