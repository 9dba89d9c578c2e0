//go:build unix

package main

import "syscall"

// mapWALIndex maps the first page of the SQLite database's WAL-index (its
// -shm file) read-only, and returns what closes the descriptor it mapped
// through. That descriptor must stay open while any connection of this
// process has the database open: POSIX record locks belong to a process
// and a file, and closing any descriptor of the file drops all of them,
// SQLite's own included (https://www.sqlite.org/howtocorrupt.html, 2.2).
// Without its lock on the -shm file, another process opening the database
// would take the WAL-index for unused and rebuild it under this one.
// When the mapping fails the descriptor is left open for the same reason.
func mapWALIndex(path string) ([]byte, func(), error) {
	fd, err := syscall.Open(path+"-shm", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	mem, err := syscall.Mmap(fd, 0, walIndexMapped, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return mem, func() { syscall.Close(fd) }, nil
}
