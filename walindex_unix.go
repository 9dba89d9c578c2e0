//go:build unix

package main

import (
	"os"
	"syscall"
)

// mapWALIndex maps the first page of the SQLite database's WAL-index
// (its -shm file) read-only.
func mapWALIndex(path string) ([]byte, func(), error) {
	f, err := os.Open(path + "-shm")
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	mem, err := syscall.Mmap(int(f.Fd()), 0, walIndexMapped, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return mem, func() { syscall.Munmap(mem) }, nil
}
