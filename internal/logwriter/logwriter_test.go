package logwriter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lockedBuffer is a destination that takes every write at once.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestLinesArriveWholeAndInOrder(t *testing.T) {
	var out lockedBuffer
	w := New(&out, 1<<20)
	const writers, lines = 4, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				fmt.Fprintf(w, "writer=%d line=%d %s\n", g, i, strings.Repeat("x", 40))
			}
		})
	}
	wg.Wait()
	if err := w.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var g, i int
		var rest string
		if _, err := fmt.Sscanf(line, "writer=%d line=%d %s", &g, &i, &rest); err != nil || len(rest) != 40 {
			t.Fatalf("line not whole: %q", line)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d came where %d was due", g, i, next[g])
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d lines arrived, want %d", g, n, lines)
		}
	}
	if out.writes >= writers*lines/2 {
		t.Errorf("%d writes for %d lines: they were not gathered", out.writes, writers*lines)
	}
}

// A destination that takes nothing (a pipe nobody reads) neither blocks a
// Write nor loses the count of what it could not hold; once it is read
// again, the count comes first, then what is written next.
func TestStalledDestinationNeverBlocksWrite(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := New(pw, 64<<10)
	// 1 MB: the pipe's 64 KiB, the 64 KiB waiting, the rest dropped
	writeWithin(t, w, r, 10000, func(i int) string { return fmt.Sprintf("line=%d %s\n", i, strings.Repeat("x", 90)) })
	got := make(chan string, 20000) // the pipe is drained while the test waits below
	go func() {
		defer close(got)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			got <- sc.Text()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for { // what waited has gone into the pipe: the next line is not dropped
		w.mu.Lock()
		waiting := len(w.buf)
		w.mu.Unlock()
		if waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still wait with the pipe read", waiting)
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Fprintln(w, "after")
	kept, dropped, notices := 0, 0, 0
	for line := range got {
		if line == "after" {
			break
		}
		if i := strings.Index(line, "lines="); i >= 0 && strings.Contains(line, "log lines dropped") {
			var n int
			fmt.Sscanf(line[i:], "lines=%d", &n)
			dropped += n
			notices++
			if !strings.Contains(line, "level=WARN") {
				t.Errorf("notice not a warning: %s", line)
			}
			continue
		}
		kept++
	}
	if notices == 0 || kept+dropped != 10000 {
		t.Errorf("%d lines read and %d counted as dropped in %d notices, of 10000", kept, dropped, notices)
	}
	if err := w.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	for range got { // to the end, so that the reader's goroutine ends
	}
}

// Close waits a bounded time for a stalled destination, drops what is
// written meanwhile, and its goroutine ends once the destination takes the
// last write.
func TestCloseGivesUpOnStalledDestination(t *testing.T) {
	r, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := New(pw, 1<<20)
	line := strings.Repeat("y", 99) + "\n"
	writeWithin(t, w, r, 2000, func(int) string { return line }) // 200 KB: more than the pipe holds
	if err := w.Close(100 * time.Millisecond); !errors.Is(err, ErrStalled) {
		t.Fatalf("Close = %v, want ErrStalled", err)
	}
	io.WriteString(w, "late\n") // the goroutine still writes: dropped, not blocked on
	read := make(chan int)
	go func() {
		n, _ := io.Copy(io.Discard, r)
		read <- int(n)
	}()
	<-w.done
	pw.Close()
	if n := <-read; n != 2000*len(line) {
		t.Errorf("%d bytes read, want %d", n, 2000*len(line))
	}
}

// writeWithin writes n lines to w, failing the test if that takes 10 s: a
// Write blocked on the pipe whose read end is r. The writes are then
// unblocked (r closed), so that no goroutine is left behind.
func writeWithin(t *testing.T, w *Writer, r *os.File, n int, line func(int) string) {
	t.Helper()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := range n {
			io.WriteString(w, line(i))
		}
	}()
	select {
	case <-wrote:
	case <-time.After(10 * time.Second):
		r.Close() // the writes fail, and end
		<-wrote
		w.Close(time.Second)
		t.Fatal("Write blocked on a destination that takes nothing")
	}
}
