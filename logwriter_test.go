package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// stuckWriter is an output that accepts nothing until released, like a
// pipe that nobody reads.
type stuckWriter struct {
	entered chan struct{} // closed when the first Write starts waiting
	release chan struct{}
	enter   sync.Once
	unblock sync.Once

	mu    sync.Mutex
	out   bytes.Buffer
	calls int
}

func newStuckWriter(t *testing.T) *stuckWriter {
	w := &stuckWriter{entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(w.resume) // so that the log writer's goroutine ends
	return w
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	w.enter.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	return w.out.Write(p)
}

// resume lets every Write, waiting or to come, through.
func (w *stuckWriter) resume() { w.unblock.Do(func() { close(w.release) }) }

func (w *stuckWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

// waitStuck waits until the log writer's goroutine is blocked in w.
func (w *stuckWriter) waitStuck(t *testing.T) {
	t.Helper()
	select {
	case <-w.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the log writer did not start writing")
	}
}

// recordingWriter keeps every Write call apart, and takes a little time
// over each so that lines keep arriving while it writes.
type recordingWriter struct {
	mu    sync.Mutex
	calls [][]byte
	err   error // answered once, by the first Write, when set
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	time.Sleep(100 * time.Microsecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.err; err != nil {
		w.err = nil
		return 0, err
	}
	w.calls = append(w.calls, bytes.Clone(p))
	return len(p), nil
}

func (w *recordingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(bytes.Join(w.calls, nil))
}

func (w *recordingWriter) numCalls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.calls)
}

// parseDropped returns the count of a "log lines dropped" line, checking
// that it has the keys of the service's other log lines.
func parseDropped(t *testing.T, line string) int {
	t.Helper()
	var v struct {
		Time    *time.Time
		Level   string
		Msg     string
		Dropped int
	}
	if err := json.Unmarshal([]byte(line), &v); err != nil || v.Time == nil || v.Level != "WARN" || v.Msg != "log lines dropped" {
		t.Fatalf("got %q (%v), want a WARN line reporting dropped log lines", line, err)
	}
	return v.Dropped
}

func TestLogWriteDoesNoIO(t *testing.T) {
	w := &recordingWriter{}
	lw := newLogWriter(w, time.Hour)
	var want strings.Builder
	for i := range 100 {
		line := fmt.Sprintf(`{"msg":"request","n":%d}`+"\n", i)
		want.WriteString(line)
		if n, err := lw.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write: got %d, %v; want %d, nil", n, err, len(line))
		}
	}
	if got := w.numCalls(); got != 0 {
		t.Fatalf("writes to the output before the interval: got %d, want 0", got)
	}
	if err := lw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := w.String(), want.String(); got != want {
		t.Fatalf("after Close the output holds %q, want %q", got, want)
	}
	if _, err := lw.Write([]byte("late\n")); err == nil {
		t.Fatal("Write after Close: got no error")
	}
}

// TestLogWriteNeverWaitsForStuckOutput fills the buffer while the output
// accepts nothing: Write keeps returning at once, lines beyond the bound
// are dropped whole, and once the output resumes their number is reported
// where they were lost.
func TestLogWriteNeverWaitsForStuckOutput(t *testing.T) {
	w := newStuckWriter(t)
	lw := newLogWriter(w, 5*time.Millisecond)
	lw.Write([]byte("first\n"))
	w.waitStuck(t)

	const n = 10_000
	line := func(i int) string { return fmt.Sprintf("line %05d %s\n", i, strings.Repeat("x", 200)) }
	wrote := make(chan error, 1)
	go func() {
		for i := range n {
			l := line(i)
			if got, err := lw.Write([]byte(l)); got != len(l) || err != nil {
				wrote <- fmt.Errorf("Write %d: got %d, %v; want %d, nil", i, got, err, len(l))
				return
			}
		}
		wrote <- nil
	}()
	// A deadlock check, not a speed test: each Write takes microseconds.
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("%d writes with the output stuck did not return within 2s", n)
	}

	w.resume()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(w.String(), "log lines dropped") {
		if time.Now().After(deadline) {
			t.Fatalf("no report of dropped lines 5s after the output resumed; output ends %q", tail(w.String()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	lw.Write([]byte("after\n"))
	if err := lw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	lines := strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n")
	if len(lines) < 3 || lines[0] != "first" || lines[len(lines)-1] != "after" {
		t.Fatalf("got %d lines starting %q, want first, kept lines, the report, after", len(lines), lines[:min(2, len(lines))])
	}
	kept := lines[1 : len(lines)-2]
	for i, l := range kept {
		if want := strings.TrimSuffix(line(i), "\n"); l != want {
			t.Fatalf("line %d: got %q, want %q", i+1, l, want)
		}
	}
	// The buffer holds as many whole lines as fit in its bound.
	if got, want := len(kept), logPendingMax/len(line(0)); got != want {
		t.Errorf("lines kept while stuck: got %d, want %d", got, want)
	}
	if got, want := parseDropped(t, lines[len(lines)-2]), n-len(kept); got != want {
		t.Errorf("reported dropped lines: got %d, want %d", got, want)
	}
}

func tail(s string) string { return s[max(0, len(s)-200):] }

// TestLogWriterKeepsLinesWholeAndInOrder writes lines from several
// goroutines faster than the output takes them.
func TestLogWriterKeepsLinesWholeAndInOrder(t *testing.T) {
	w := &recordingWriter{}
	lw := newLogWriter(w, time.Millisecond)
	const writers, perWriter = 8, 1000 // about 800 KB: under the bound, nothing dropped
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				lw.Write(fmt.Appendf(nil, "%d %04d %s\n", g, i, strings.Repeat("y", 90)))
			}
		})
	}
	wg.Wait()
	if err := lw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	if w.numCalls() < 2 {
		t.Errorf("the output got %d writes, want the lines spread over several", w.numCalls())
	}
	for i, c := range w.calls {
		if !bytes.HasSuffix(c, []byte("\n")) {
			t.Fatalf("write %d ends in the middle of a line: %q", i, tail(string(c)))
		}
	}
	next := make([]int, writers)
	for _, l := range strings.Split(strings.TrimSuffix(w.String(), "\n"), "\n") {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(l, "%d %d %s", &g, &i, &pad); err != nil || g < 0 || g >= writers || len(pad) != 90 {
			t.Fatalf("line %q is not one written whole", l)
		}
		if i != next[g] {
			t.Fatalf("writer %d: got its line %d, want line %d", g, i, next[g])
		}
		next[g]++
	}
	for g, got := range next {
		if got != perWriter {
			t.Errorf("writer %d: got %d lines, want %d", g, got, perWriter)
		}
	}
}

func TestLogWriterReportsLinesLostToAFailedWrite(t *testing.T) {
	w := &recordingWriter{err: errors.New("broken output")}
	lw := newLogWriter(w, time.Hour)
	for _, l := range []string{"a\n", "b\n", "c\n"} {
		lw.Write([]byte(l))
	}
	if err := lw.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := parseDropped(t, strings.TrimSuffix(w.String(), "\n")), 3; got != want {
		t.Fatalf("reported dropped lines: got %d, want %d", got, want)
	}
}

func TestLogWriterCloseGivesUpOnStuckOutput(t *testing.T) {
	w := newStuckWriter(t)
	lw := newLogWriter(w, time.Millisecond)
	lw.Write([]byte("first\n"))
	w.waitStuck(t)
	lw.Write([]byte("second\n"))

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- lw.Close() }()
	select {
	case err := <-closed:
		if err == nil {
			t.Error("Close with the output stuck: got no error, want one saying lines are lost")
		}
		if took := time.Since(start); took < logCloseTimeout {
			t.Errorf("Close returned after %v, before its timeout %v", took, logCloseTimeout)
		}
	case <-time.After(logCloseTimeout + 3*time.Second):
		t.Fatalf("Close with the output stuck did not return within %v of its timeout", 3*time.Second)
	}
}
