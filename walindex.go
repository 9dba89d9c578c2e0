package main

import (
	"errors"
	"sync/atomic"
	"unsafe"
)

// walIndex reads SQLite's change counter without a query: the header of
// the WAL-index (the database's -shm file, which every connection of every
// process maps to share it) holds iChange, a counter that each committed
// transaction moves on, and the WAL's salts, which change when the WAL
// starts over. SQLite writes the header twice, the second copy last, and
// a reader that finds both copies equal has a consistent one: SQLite's own
// readers do the same (https://www.sqlite.org/walformat.html, "the
// WAL-index header"). Reading it costs a few loads instead of a statement,
// which is what lets every request check its account's freshness cheaply.
//
// The mapping stays meaningful while a connection of this process keeps
// the database open (SQLite removes the -shm file when its last
// connection closes): the store's pools keep theirs for its whole life.
// It is never unmapped: a handler still running when the store closes at
// a forced shutdown must not read unmapped memory, and it is one page.
type walIndex struct {
	mem []byte
}

const (
	walIndexMapped = 4096 // bytes mapped: the headers are the first 136
	walHeaderBytes = 48   // one copy of the header
)

// openWALIndex maps the WAL-index of the SQLite file at path. It fails
// where the system cannot map it, or the database is not in WAL mode.
func openWALIndex(path string) (*walIndex, error) {
	mem, unmap, err := mapWALIndex(path)
	if err != nil {
		return nil, err
	}
	if len(mem) < 2*walHeaderBytes || uintptr(unsafe.Pointer(&mem[0]))%4 != 0 {
		unmap()
		return nil, errors.New("WAL-index too small or misaligned")
	}
	return &walIndex{mem: mem}, nil
}

// word loads the 32-bit word at byte offset off of the header.
func (w *walIndex) word(off int) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&w.mem[off])))
}

// changes returns a number that differs whenever a transaction has
// committed to the database since it was last read, by any connection of
// any process; ok is false when the header could not be read whole, a
// writer updating it each of a few tries.
func (w *walIndex) changes() (v int64, ok bool) {
	for range 3 {
		if v, ok = w.read(); ok {
			return v, true
		}
	}
	return 0, false
}

// read reads the header once, as SQLite's readers do.
func (w *walIndex) read() (v int64, ok bool) {
	var first, second [walHeaderBytes / 4]uint32
	for i := range first {
		first[i] = w.word(4 * i)
	}
	for i := range second {
		second[i] = w.word(walHeaderBytes + 4*i)
	}
	if first != second || w.mem[12] == 0 { // copies differ, or isInit unset
		return 0, false
	}
	const iChange, salt1 = 2, 8 // word indexes: iChange at byte 8, aSalt[0] at byte 32
	return int64(first[salt1])<<32 | int64(first[iChange]), true
}
