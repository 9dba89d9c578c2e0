//go:build !unix

package main

import "errors"

// mapWALIndex is not available here: the change counter is read with a
// query instead.
func mapWALIndex(string) ([]byte, func(), error) {
	return nil, nil, errors.New("no shared memory map on this system")
}
