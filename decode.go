package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// Request bodies: one JSON object, read by exact member names, with every
// problem collected by its field path.

// jsonObject is a request body's members by their exact names. Member
// names are matched exactly: "USERNAME" is an unknown member, ignored, not
// another spelling of "username".
type jsonObject map[string]json.RawMessage

// decode reads the request body, which must be one JSON object. An empty,
// malformed, oversized or trailing-garbage body is an apiError the client
// can act on.
func decode(w http.ResponseWriter, r *http.Request) (jsonObject, error) {
	body, err := readBody(w, r)
	if err != nil {
		return nil, err
	}
	return parseObject(body)
}

// readBody reads the request body, of at most maxBodyBytes. One of a
// small known length (net/http delivers exactly that many bytes) is read
// into a buffer of that size, at once; any other grows as it comes, so
// that a length announced but never sent holds no memory.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxBodyBytes {
		return nil, errTooLarge
	}
	var body []byte
	var err error
	if 0 <= r.ContentLength && r.ContentLength <= readAtOnce {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, errTooLarge
	}
	if err != nil {
		return nil, newError(codeInvalid, "the request body could not be read")
	}
	return body, nil
}

// parseObject parses body as one JSON object, with nothing after it but
// white space. The body is checked once, whole, by validJSON; its parts
// are then split by the scanner below, which may trust their syntax.
func parseObject(body []byte) (jsonObject, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) > 0 && !validJSON(body) {
		return nil, errBadJSON
	}
	// Only an object will do: not an array, a string, or null.
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, newError(codeInvalid, "the request body must be a JSON object")
	}
	return splitObject(trimmed), nil
}

// readAtOnce is the largest body that readBody reads into a buffer of
// its announced size before it arrives: a create of 10 movies is about
// 2 KB.
const readAtOnce = 64 << 10

var (
	errTooLarge = newError(codeTooLarge, fmt.Sprintf("the request body must not exceed %d bytes", maxBodyBytes))
	errBadJSON  = newError(codeInvalid, "the request body is not valid JSON")
)

// fieldProblems collects what is wrong with a request body, by field path
// such as "movies[1].uuid", so that every problem is reported at once.
type fieldProblems map[string]string

// err is the 400 for the problems, or nil when there are none.
func (p fieldProblems) err() error {
	if len(p) == 0 {
		return nil
	}
	return invalidFields(p)
}

// str reads member name of o as a string. Absent or null is nil; any
// other type is a problem at path.
func (o jsonObject) str(p fieldProblems, path, name string) *string {
	raw := o[name]
	s, what := stringValue(raw)
	switch {
	case what != "":
		p[path] = what
		return nil
	case raw == nil || isNull(raw):
		return nil
	}
	return &s
}

// stringValue reads the member value raw as a string, and tells what is
// wrong with it when it is not one; absent (nil) or null is "" with
// nothing wrong.
func stringValue(raw json.RawMessage) (s, problem string) {
	switch {
	case raw == nil || isNull(raw):
		return "", ""
	case raw[0] != '"':
		return "", "must be a string"
	}
	if inner := raw[1 : len(raw)-1]; bytes.IndexByte(inner, '\\') < 0 {
		// No escape, as most strings: valid text is its bytes.
		if !utf8.Valid(inner) {
			return "", "must be valid UTF-8"
		}
		return string(inner), ""
	}
	if !validText(raw) {
		return "", "must be valid UTF-8"
	}
	return unquote(raw), ""
}

// validText reports whether the JSON string raw is valid UTF-8 with no
// lone surrogate escape ("\ud800" unpaired): encoding/json would replace
// either with U+FFFD, so that two different passwords, say, would become
// the same one.
func validText(raw json.RawMessage) bool {
	if !utf8.Valid(raw) {
		return false
	}
	for i := 0; i < len(raw)-1; i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character: \\ and \" are skipped whole
		if raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw[i+1:])
		i += 4
		switch {
		case !ok:
			return false
		case 0xDC00 <= r && r <= 0xDFFF: // a low surrogate alone
			return false
		case 0xD800 <= r && r <= 0xDBFF: // a high one: a low one must follow
			if len(raw) <= i+2 || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return false
			}
			low, ok := hex4(raw[i+3:])
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

// hex4 reads the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[:4]), 16, 16)
	return rune(n), err == nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// The scanner below splits JSON that validJSON has accepted: every value
// it is given, and every part it returns, is well-formed, so it only looks
// for where each part ends. It reads each byte a constant number of times.

// splitObject returns the members of the object raw. A name given twice
// keeps its last value, as encoding/json does.
func splitObject(raw []byte) jsonObject {
	o := jsonObject{}
	eachMember(raw, func(name []byte, value json.RawMessage) { o[string(name)] = value })
	return o
}

// eachMember calls f with the name and the value of each member of the
// object raw, in order. A name is passed as the body's own bytes when it
// needs no decoding, so f must not change it or keep it.
func eachMember(raw []byte, f func(name []byte, value json.RawMessage)) {
	i := skipSpace(raw, 1)
	for raw[i] != '}' {
		end := valueEnd(raw, i)
		name := raw[i+1 : end-1]
		if bytes.IndexByte(name, '\\') >= 0 || !utf8.Valid(name) {
			name = []byte(unquote(raw[i:end]))
		}
		i = skipSpace(raw, skipSpace(raw, end)+1) // past the colon
		end = valueEnd(raw, i)
		f(name, raw[i:end])
		i = nextItem(raw, end)
	}
}

// nextItem skips the space and the comma, if any, after an item ending
// at i, and the space after that.
func nextItem(raw []byte, i int) int {
	i = skipSpace(raw, i)
	if raw[i] == ',' {
		i = skipSpace(raw, i+1)
	}
	return i
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\r' || raw[i] == '\n') {
		i++
	}
	return i
}

// valueEnd returns where the value that starts at i ends.
func valueEnd(raw []byte, i int) int {
	switch raw[i] {
	case '"':
		return stringEnd(raw, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch raw[i] {
			case '"':
				i = stringEnd(raw, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	default: // a number, true, false or null
		for ; i < len(raw); i++ {
			switch raw[i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return i
			}
		}
		return i
	}
}

// stringEnd returns where the string that starts at i ends, past its
// closing quote: the first quote after i that an even number of
// backslashes precede, found with bytes.IndexByte, which reads many
// bytes at a time.
func stringEnd(raw []byte, i int) int {
	start := i
	for {
		j := bytes.IndexByte(raw[i+1:], '"')
		if j < 0 {
			return len(raw) // no end: not from JSON that validJSON accepted
		}
		i += 1 + j
		backslashes := 0
		for b := i - 1; b > start && raw[b] == '\\'; b-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return i + 1
		}
	}
}

// scanString returns where the string that starts at i ends, past its
// closing quote, and whether it is plain (plainRun): ASCII with no
// escape and no control character, so that its text is its bytes, as
// many characters as bytes, with no NUL. Most strings of a body are, and plainRun reads them eight bytes
// at a time.
func scanString(raw []byte, i int) (end int, plain bool) {
	if j := plainRun(raw, i+1); j < len(raw) && raw[j] == '"' {
		return j + 1, true
	}
	return stringEnd(raw, i), false
}

// unquote returns the text of the JSON string raw. One with no escape is
// its bytes; encoding/json reads the others.
func unquote(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	json.Unmarshal(raw, &s)
	return s
}
