package runlog

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// openLive creates a live file in dir as ProcMan does: read-write, appending.
func openLive(t *testing.T, dir string) (*os.File, string) {
	t.Helper()
	path := filepath.Join(dir, "1700000000000000000.log")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	return f, path
}

// writer runs a process that writes lines "0000001 ...." up to n into f, as
// a job would: straight into the file, through its own descriptor. It writes
// as fast as it can, in bursts of 20,000 lines (900 KB) with pauses of 20ms,
// so that the file is rotated again and again while it writes.
func writer(t *testing.T, f *os.File, n int) *exec.Cmd {
	t.Helper()
	// awk: one process, no fork per line, so it writes fast.
	cmd := exec.Command("awk", fmt.Sprintf(`BEGIN { for (i = 1; i <= %d; i++) { printf "%%07d %%s\n", i, "abcdefghijklmnopqrstuvwxyz0123456789"; `+
		`if (i %% 20000 == 0) { fflush(); system("sleep 0.02") } } }`, n))
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func want(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%07d %s\n", i, "abcdefghijklmnopqrstuvwxyz0123456789")
	}
	return b.String()
}

func readAll(t *testing.T, path string, l *Live) string {
	t.Helper()
	r, err := Open(path, l)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The collapse path (ext4 and XFS): a fast writer's file is cut again and
// again while it writes, and not a byte is lost or repeated; the live file
// stays small and the parts are read in order, while the file is live and
// after.
func TestRotationLosesNothing(t *testing.T) {
	dir := t.TempDir()
	w := NewWatcher(slog.New(slog.DiscardHandler))
	defer w.Close()
	f, path := openLive(t, dir)
	var rotations atomic.Int32
	const capBytes = 64 << 10
	l := w.Watch(f, path, capBytes, func() { rotations.Add(1) })
	const lines = 200_000 // 9 MB
	cmd := writer(t, f, lines)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// Its last writes may not be looked at yet: wait until the file is small.
	deadline := time.Now().Add(10 * time.Second)
	for fi, _ := os.Stat(path); fi.Size() > capBytes; fi, _ = os.Stat(path) {
		if time.Now().After(deadline) {
			t.Fatalf("live file still %d bytes, cap %d", fi.Size(), capBytes)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := readAll(t, path, l); got != want(lines) {
		t.Fatalf("read while live: %d bytes, want %d (first difference at %d)", len(got), len(want(lines)), diffAt(got, want(lines)))
	}
	l.Unwatch()
	parts, err := Parts(path)
	if err != nil || len(parts) < 2 || int(rotations.Load()) != len(parts) {
		t.Fatalf("%d parts (%v), %d rotations", len(parts), err, rotations.Load())
	}
	if got := readAll(t, path, nil); got != want(lines) {
		t.Fatalf("read from the disk: %d bytes, want %d", len(got), len(want(lines)))
	}
	if l.Bytes() != int64(len(want(lines))) {
		t.Errorf("Bytes %d, want %d", l.Bytes(), len(want(lines)))
	}
	for _, p := range parts {
		if fi, _ := os.Stat(p.Path); fi.Mode().Perm() != 0o640 {
			t.Errorf("part %s has mode %v, want 0640", p.Path, fi.Mode().Perm())
		}
	}
}

func diffAt(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A reader that follows the file as it is written reads every byte once,
// in order, whatever the rotations do meanwhile.
func TestReaderFollowsThroughRotations(t *testing.T) {
	dir := t.TempDir()
	w := NewWatcher(slog.New(slog.DiscardHandler))
	defer w.Close()
	f, path := openLive(t, dir)
	l := w.Watch(f, path, 16<<10, nil)
	r, err := Open(path, l)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const lines = 100_000
	cmd := writer(t, f, lines)
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var got bytes.Buffer
	buf := make([]byte, 1000) // small reads: many of them straddle a rotation
	total := len(want(lines))
	deadline := time.Now().Add(20 * time.Second)
	for got.Len() < total && time.Now().Before(deadline) {
		n, err := r.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			time.Sleep(time.Millisecond)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	<-exited
	if got.String() != want(lines) {
		t.Fatalf("followed %d bytes, want %d (first difference at %d)", got.Len(), total, diffAt(got.String(), want(lines)))
	}
	if len(l.Parts()) == 0 {
		t.Fatal("no rotation happened while following")
	}
}

// On tmpfs, which cannot collapse a range, the file is copied and truncated.
// With a writer that pauses while the file is cut, nothing is lost either.
func TestRotationFallsBackToCopyAndTruncate(t *testing.T) {
	if _, err := os.Stat("/dev/shm"); err != nil {
		t.Fatal("/dev/shm (tmpfs) is needed to test the fallback")
	}
	dir, err := os.MkdirTemp("/dev/shm", "runlog-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	w := NewWatcher(slog.New(slog.DiscardHandler))
	defer w.Close()
	f, path := openLive(t, dir)
	rotated := make(chan struct{}, 10)
	l := w.Watch(f, path, 10_000, func() { rotated <- struct{}{} })
	var all strings.Builder
	for round := range 3 {
		chunk := strings.Repeat(fmt.Sprintf("round %d\n", round), 2000) // 16 KB: over the cap
		if _, err := f.WriteString(chunk); err != nil {
			t.Fatal(err)
		}
		all.WriteString(chunk)
		select {
		case <-rotated:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: not rotated", round)
		}
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("live file %d bytes after copy-and-truncate, want 0", fi.Size())
	}
	if got := readAll(t, path, l); got != all.String() {
		t.Fatalf("read %d bytes, want %d", len(got), all.Len())
	}
	l.Unwatch()
	if got := readAll(t, path, nil); got != all.String() {
		t.Fatalf("read from the disk %d bytes, want %d", len(got), all.Len())
	}
}

func TestTailAcrossParts(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "1.log")
	write := func(path, s string) {
		if err := os.WriteFile(path, []byte(s), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	write(PartPath(main, 1), "a\nb\nc")
	write(PartPath(main, 2), "d\ne\n")
	write(main, "f\ng")
	for n, want := range map[int]string{1: "g", 2: "f\ng", 3: "e\nf\ng", 4: "cd\ne\nf\ng", 5: "b\ncd\ne\nf\ng", 6: "a\nb\ncd\ne\nf\ng", 50: "a\nb\ncd\ne\nf\ng"} {
		r, err := Open(main, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Tail(n); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != want {
			t.Errorf("tail %d: %q, want %q", n, b, want)
		}
	}
	// An empty main file: the final newline of the newest part ends its last line.
	write(main, "")
	r, _ := Open(main, nil)
	r.Tail(1)
	if b, _ := io.ReadAll(r); string(b) != "e\n" {
		t.Errorf("tail 1 with an empty main file: %q", b)
	}
	r.Close()
}

func TestTailWithoutFinalNewline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.log")
	for content, want := range map[string]string{"a\nb\nc": "b\nc", "": "", "\n\n": "\n\n", "abc": "abc", "a\n\nb\n": "\nb\n"} {
		os.WriteFile(path, []byte(content), 0o640)
		r, err := Open(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Tail(2); err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != want {
			t.Errorf("tail 2 of %q = %q, want %q", content, b, want)
		}
	}
}

// Parts that retention removed are skipped; a leftover of an interrupted
// rotation is removed by Recover and never read.
func TestMissingPartsAndRecover(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "1.log")
	os.WriteFile(PartPath(main, 2), []byte("two\n"), 0o640)
	os.WriteFile(PartPath(main, 3)+".tmp", []byte("three\n"), 0o640)
	os.WriteFile(main, []byte("three\nfour\n"), 0o640)
	os.WriteFile(filepath.Join(dir, "2.log"), []byte("other run\n"), 0o640)
	if got := readAll(t, main, nil); got != "two\nthree\nfour\n" {
		t.Errorf("read %q", got)
	}
	if n := Recover(main); n != int64(len("two\nthree\nfour\n")) {
		t.Errorf("Recover: %d bytes", n)
	}
	if _, err := os.Stat(PartPath(main, 3) + ".tmp"); err == nil {
		t.Error("Recover left the unfinished part")
	}
	parts, _ := ListParts(dir)
	if len(parts) != 1 || len(parts[main]) != 1 || parts[main][0].N != 2 {
		t.Errorf("ListParts: %+v", parts)
	}
}

// Without inotify (no instance could be made), live files are looked at on a
// timer, and still rotated.
func TestRotationWithoutInotify(t *testing.T) {
	dir := t.TempDir()
	w := NewWatcher(slog.New(slog.DiscardHandler))
	defer w.Close()
	w.mu.Lock()
	w.inoErr = fmt.Errorf("no inotify here")
	w.mu.Unlock()
	f, path := openLive(t, dir)
	rotated := make(chan struct{}, 1)
	l := w.Watch(f, path, 10_000, func() { rotated <- struct{}{} })
	chunk := strings.Repeat("0123456789abcdef\n", 1000)
	if _, err := f.WriteString(chunk); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rotated:
	case <-time.After(10 * time.Second):
		t.Fatal("not rotated without inotify")
	}
	if got := readAll(t, path, l); got != chunk {
		t.Fatalf("read %d bytes, want %d", len(got), len(chunk))
	}
	l.Unwatch()
}
