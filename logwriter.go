package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Bounds of the log writer.
const (
	// logFlushBytes of pending lines wake the writing goroutine before
	// the interval is up.
	logFlushBytes = 64 << 10
	// logPendingMax bounds the lines waiting while the output is stuck;
	// beyond it, lines are dropped.
	logPendingMax = 1 << 20
	// logCloseTimeout bounds how long Close waits for the output.
	logCloseTimeout = 2 * time.Second
)

// logWriter lets the service log without ever waiting for its output, so
// that a stdout nobody reads (a full pipe) cannot stall requests.
//
// Write only copies the line into an in-memory buffer under a mutex: no
// system call, no waiting on I/O. One goroutine swaps the buffer out and
// writes it, without the mutex, every interval or as soon as the buffer
// passes logFlushBytes. While the output is stuck, lines wait in the
// buffer up to logPendingMax; past that, lines are dropped whole and
// counted until the buffer is next swapped out, and a WARN line saying how
// many were dropped is written where they would have been. Each Write is
// taken to be one whole line, as slog's handlers write them. At most one
// interval of lines is lost if the process is killed.
type logWriter struct {
	out  io.Writer
	kick chan struct{} // holds a wake-up when the buffer passed logFlushBytes
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	buf     []byte // lines waiting to be written
	dropped int    // lines dropped since buf was last swapped out
	closed  bool

	// Only the writing goroutine uses these.
	spare []byte // the buffer written last, reused for the next lines
	lost  int    // dropped or failed lines not yet reported
}

// errLogWriterClosed answers a Write after Close.
var errLogWriterClosed = errors.New("log writer is closed")

func newLogWriter(w io.Writer, interval time.Duration) *logWriter {
	lw := &logWriter{
		out:  w,
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go lw.loop(interval)
	return lw
}

// Write queues the line p and returns at once, whatever the output does.
func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	switch {
	case lw.closed:
		return 0, errLogWriterClosed
	case lw.dropped > 0 || len(lw.buf)+len(p) > logPendingMax:
		// Once a line is dropped, the ones after it are too until the
		// buffer is written, so that the report marks a single gap.
		lw.dropped++
		return len(p), nil
	}
	lw.buf = append(lw.buf, p...)
	if len(lw.buf) >= logFlushBytes {
		select {
		case lw.kick <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return len(p), nil
}

// loop writes the pending lines every interval, when kicked, and once
// more when stopped.
func (lw *logWriter) loop(interval time.Duration) {
	defer close(lw.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-lw.stop:
			lw.flush()
			return
		case <-t.C:
		case <-lw.kick:
		}
		lw.flush()
	}
}

// flush swaps the pending lines out and writes them, then reports the
// lines lost since the last report: dropped by Write while the output
// was stuck, or lost to a failed write.
func (lw *logWriter) flush() {
	lw.mu.Lock()
	batch := lw.buf
	lw.buf = lw.spare[:0]
	lw.lost += lw.dropped
	lw.dropped = 0
	lw.mu.Unlock()

	if len(batch) > 0 {
		if n, err := lw.out.Write(batch); err != nil {
			lw.lost += bytes.Count(batch[n:], []byte{'\n'})
		}
	}
	if lw.lost > 0 {
		if _, err := lw.out.Write(droppedLine(lw.lost)); err == nil {
			lw.lost = 0
		}
	}
	// Keep the buffer for the next lines, unless a stall made it large.
	lw.spare = nil
	if cap(batch) <= 4*logFlushBytes {
		lw.spare = batch[:0]
	}
}

// droppedLine is the log line that reports n lost lines, in the format of
// the service's own lines.
func droppedLine(n int) []byte {
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Warn("log lines dropped", "dropped", n)
	return b.Bytes()
}

// Close stops taking lines and writes out the pending ones. It waits at
// most logCloseTimeout for a stuck output, so that a stdout nobody reads
// cannot hang the shutdown.
func (lw *logWriter) Close() error {
	lw.mu.Lock()
	if lw.closed {
		lw.mu.Unlock()
		return errLogWriterClosed
	}
	lw.closed = true
	lw.mu.Unlock()
	close(lw.stop)

	t := time.NewTimer(logCloseTimeout)
	defer t.Stop()
	select {
	case <-lw.done:
		return nil
	case <-t.C:
		return fmt.Errorf("log output still blocked after %s: the last lines are lost", logCloseTimeout)
	}
}
