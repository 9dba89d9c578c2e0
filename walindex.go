package main

import (
	"errors"
	"sync/atomic"
	"unsafe"
)

// walIndex reads SQLite's change counter without a query: the header of
// the WAL-index (the database's -shm file, which every connection of every
// process maps to share it) holds iChange, a counter that each committed
// transaction moves on, mxFrame, the WAL's last committed frame, and the
// WAL's salts, which change when the WAL starts over. SQLite writes the
// header twice, the second copy last, and a reader that finds both copies
// equal has a consistent one: SQLite's own readers do the same
// (https://www.sqlite.org/walformat.html, "the WAL-index header"). Reading
// it costs a few loads instead of a statement, which is what lets every
// request check its account's freshness cheaply.
//
// The mapping stays meaningful while a connection of this process keeps
// the database open (SQLite removes the -shm file when its last
// connection closes): the store's pools keep theirs for its whole life.
// It is never unmapped: a handler still running when the store closes at
// a forced shutdown must not read unmapped memory, and it is one page.
type walIndex struct {
	mem []byte
	// closeFile closes the descriptor the mapping was made through, once
	// no connection of this process has the database open (see
	// mapWALIndex).
	closeFile func()
}

const (
	walIndexMapped = 4096 // bytes mapped: the headers are the first 136
	walHeaderBytes = 48   // one copy of the header
)

// openWALIndex maps the WAL-index of the SQLite file at path. It fails
// where the system cannot map it, or the database is not in WAL mode.
func openWALIndex(path string) (*walIndex, error) {
	mem, closeFile, err := mapWALIndex(path)
	if err != nil {
		return nil, err
	}
	if len(mem) < 2*walHeaderBytes || uintptr(unsafe.Pointer(&mem[0]))%4 != 0 {
		// Left mapped and open, like a failed mapping: one page.
		return nil, errors.New("WAL-index too small or misaligned")
	}
	return &walIndex{mem: mem, closeFile: closeFile}, nil
}

// release closes the descriptor the WAL-index was mapped through; call it
// once this process's connections to the database are closed. The
// mapping itself stays (see walIndex). A nil walIndex releases nothing.
func (w *walIndex) release() {
	if w != nil && w.closeFile != nil {
		w.closeFile()
		w.closeFile = nil
	}
}

// word loads the 32-bit word at byte offset off of the header.
func (w *walIndex) word(off int) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&w.mem[off])))
}

// changeKey names the database's committed state: it differs whenever a
// transaction has committed since it was last read, by any connection of
// any process.
//
// iChange alone would not do: when a process dies half-way through
// writing the header, the next connection rebuilds it from the WAL, and
// iChange starts again from 0 under the same salts, so it could come back
// to a value an entry was read at. mxFrame is read back from the WAL in
// the rebuild, and a commit always appends its last frame, so a commit
// that moves iChange moves mxFrame too: under the same salts, a commit
// after a rebuild leaves more frames than any key before it had. A
// rebuild from an empty WAL (just checkpointed and truncated) has no
// salts to read back and sets them to zero, and a WAL that this process's
// writer starts next keeps them; such a header is taken as unreadable
// until a checkpoint starts the WAL over with a new random salt.
type changeKey struct {
	// aSalt: each time the WAL starts over, the first moves on by one and
	// the second is drawn at random.
	salt, salt2 uint32
	change      uint32 // iChange: moves on by one with each commit
	frames      uint32 // mxFrame: the WAL's last committed frame
}

// changes returns the change key now; ok is false when the header could
// not be read whole, a writer updating it each of a few tries.
func (w *walIndex) changes() (k changeKey, ok bool) {
	for range 3 {
		if k, ok = w.read(); ok {
			return k, true
		}
	}
	return changeKey{}, false
}

// read reads the header once, as SQLite's readers do.
func (w *walIndex) read() (k changeKey, ok bool) {
	var first, second [walHeaderBytes / 4]uint32
	for i := range first {
		first[i] = w.word(4 * i)
	}
	for i := range second {
		second[i] = w.word(walHeaderBytes + 4*i)
	}
	if first != second || w.mem[12] == 0 { // copies differ, or isInit unset
		return changeKey{}, false
	}
	// Word indexes: iChange at byte 8, mxFrame at 16, aSalt at 32 and 36.
	const iChange, mxFrame, salt1, salt2 = 2, 4, 8, 9
	if first[salt1] == 0 && first[salt2] == 0 { // rebuilt from an empty WAL
		return changeKey{}, false
	}
	return changeKey{salt: first[salt1], salt2: first[salt2], change: first[iChange], frames: first[mxFrame]}, true
}
