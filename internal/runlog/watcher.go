package runlog

import (
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// batch is the watcher's tick: it reads inotify events at most once a
	// tick, so that a fast writer costs at most one look a tick, and each
	// wake handles every file that needs it: many jobs cost few wakes (a wake
	// costs more than the work here).
	batch = 50 * time.Millisecond
	// assumedRate is the most a process is taken to write per second: a file
	// without a watch is looked at again once it could have filled the room
	// left below its cap at that rate, and at least pollDelay apart.
	assumedRate = 1 << 30
	pollDelay   = time.Second
	maxDelay    = 10 * time.Second
	copyChunk   = 8 << 20
)

// Watcher watches live files and rotates those that grow past their cap. It
// owns two goroutines (the inotify reader and the loop that looks at files and
// rotates them), which Close ends.
type Watcher struct {
	log *slog.Logger

	mu     sync.Mutex
	ino    *os.File // the inotify instance, made at the first Watch; nil without one
	inoFD  int      // its descriptor (ino.Fd would make it blocking)
	inoErr error    // why there is none: every file is then looked at on a timer
	byWD   map[int32]*Live
	lives  map[string]*Live // by path, until the loop has closed them
	due    dueHeap          // files to re-arm or look at, by time
	ended  []*Live          // unwatched: the loop closes them
	closed bool

	events chan []int32  // woken watches, from the reader; -1: the queue overflowed
	wake   chan struct{} // capacity 1: ended or due changed
	quit   chan struct{}
	wg     sync.WaitGroup
}

// NewWatcher returns a Watcher; Close it.
func NewWatcher(log *slog.Logger) *Watcher {
	w := &Watcher{log: log, inoFD: -1, byWD: make(map[int32]*Live), lives: make(map[string]*Live),
		events: make(chan []int32), wake: make(chan struct{}, 1), quit: make(chan struct{})}
	w.wg.Add(1)
	go w.loop()
	return w
}

// Live is a watched live file. Its methods may be called from any goroutine.
type Live struct {
	w        *Watcher
	f        *os.File
	path     string
	max      int64
	onRotate func()

	// Guarded by w.mu.
	wd        int32 // the armed watch, or -1
	polled    bool  // no watch could be added: looked at on a timer
	scheduled bool  // in w.due
	ended     bool

	unwatched atomic.Bool // set by Unwatch: a rotation under way is abandoned

	// use is held while f is used (by the loop) or closed.
	use    sync.Mutex
	closed bool // f is closed; guarded by use

	// Owned by the loop goroutine.
	bsize    int64 // the file system's block size, once known
	truncate bool  // the file system cannot collapse a range: copy and truncate
	next     int   // the number of the next part

	mu      sync.RWMutex // write-held while the head is cut; readers hold it to read f's file
	parts   []Part       // the published parts, oldest first
	removed int64        // how many bytes were cut from the file's head
}

// Watch starts watching the live file at path, of which f is a descriptor
// open for writing: once it grows past max bytes, its oldest part is moved to
// a numbered file (see the package doc), and onRotate is called, on the
// Watcher's goroutine: it must not block. The Watcher owns f from now on and
// closes it after Unwatch.
func (w *Watcher) Watch(f *os.File, path string, max int64, onRotate func()) *Live {
	l := &Live{w: w, f: f, path: path, max: max, onRotate: onRotate, wd: -1, next: 1}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		l.ended = true
		f.Close()
		return l
	}
	w.lives[path] = l
	w.armLocked(l)
	return l
}

// Lookup returns the Live of the file at path, while the Watcher still has it.
func (w *Watcher) Lookup(path string) *Live {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lives[path]
}

// Unwatch ends the watch: the file is no longer rotated (a rotation under way
// is abandoned, its part removed), and its descriptor is closed, by the
// Watcher once it has let go of it if a rotation was under way.
func (l *Live) Unwatch() {
	w := l.w
	w.mu.Lock()
	if l.ended {
		w.mu.Unlock()
		return
	}
	l.ended = true
	l.unwatched.Store(true)
	w.disarmLocked(l)
	w.mu.Unlock()
	if l.use.TryLock() {
		w.release(l)
		l.use.Unlock()
		return
	}
	w.mu.Lock()
	w.ended = append(w.ended, l)
	w.mu.Unlock()
	w.poke()
}

// release closes the file's descriptor and forgets the file. The caller holds
// l.use, not w.mu.
func (w *Watcher) release(l *Live) {
	if l.closed {
		return
	}
	l.closed = true
	l.f.Close()
	w.mu.Lock()
	if w.lives[l.path] == l {
		delete(w.lives, l.path)
	}
	w.mu.Unlock()
}

// Path is the live file's path.
func (l *Live) Path() string { return l.path }

// Parts returns the parts rotated out of the file so far, oldest first.
func (l *Live) Parts() []Part {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return slices.Clone(l.parts)
}

// Bytes is the size of the file and its parts.
func (l *Live) Bytes() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	if fi, err := os.Stat(l.path); err == nil {
		n = fi.Size()
	}
	for _, p := range l.parts {
		n += p.Size
	}
	return n
}

// DropThrough removes the oldest parts up to and including the one at path,
// files and all. Asked again, or for a part already gone, it does nothing
// more: the caller may repeat it.
func (l *Live) DropThrough(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.parts, func(p Part) bool { return p.Path == path })
	for _, p := range l.parts[:i+1] {
		os.Remove(p.Path)
	}
	l.parts = l.parts[i+1:]
}

// Close stops watching every file and closes their descriptors. A rotation
// under way is abandoned at its next chunk, its part removed.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.quit)
	ino := w.ino
	w.mu.Unlock()
	var err error
	if ino != nil {
		err = ino.Close() // ends the reader's Read
	}
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lives {
		l.ended = true
		l.use.Lock()
		if !l.closed {
			l.closed = true
			l.f.Close()
		}
		l.use.Unlock()
	}
	w.lives, w.byWD, w.due, w.ended = nil, nil, nil, nil
	return err
}

func (w *Watcher) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// armLocked adds the file's one-shot watch; without inotify, or when the
// watch cannot be added (out of watches), it is looked at on a timer.
func (w *Watcher) armLocked(l *Live) {
	if w.ino == nil && w.inoErr == nil {
		w.initLocked()
	}
	if w.ino != nil && !l.polled {
		// The descriptor's own path: the watch is on the file the process
		// writes to, whatever has become of its name.
		wd, err := unix.InotifyAddWatch(w.inoFD, "/proc/self/fd/"+strconv.Itoa(int(l.f.Fd())), unix.IN_MODIFY|unix.IN_ONESHOT)
		if err == nil {
			l.wd = int32(wd)
			w.byWD[l.wd] = l
			return
		}
		w.log.Warn("no inotify watch for a live log file: it is looked at every second", "file", l.path, "err", err)
		l.polled = true
	}
	w.scheduleLocked(l, pollDelay)
}

func (w *Watcher) disarmLocked(l *Live) {
	if l.wd >= 0 {
		unix.InotifyRmWatch(w.inoFD, uint32(l.wd)) // EINVAL if it fired meanwhile
		delete(w.byWD, l.wd)
		l.wd = -1
	}
}

func (w *Watcher) initLocked() {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		w.inoErr = err
		w.log.Warn("inotify unavailable: live log files are looked at every second", "err", err)
		return
	}
	w.inoFD = fd
	w.ino = os.NewFile(uintptr(fd), "inotify") // non-blocking: its reads park in the netpoller
	w.wg.Add(1)
	go w.read(w.ino)
}

func (w *Watcher) scheduleLocked(l *Live, d time.Duration) {
	if l.scheduled || l.ended {
		return
	}
	l.scheduled = true
	heap.Push(&w.due, dueItem{at: nextTick(time.Now().Add(d)), l: l})
	w.poke() // the loop may be waiting on a later time, or none
}

// read passes the inotify events on to the loop until the instance is
// closed, at most once a tick: watches are one-shot, so at most one event per
// file waits in the kernel meanwhile.
func (w *Watcher) read(ino *os.File) {
	defer w.wg.Done()
	buf := make([]byte, 64<<10)
	pause := time.NewTimer(batch)
	pause.Stop()
	defer pause.Stop()
	for {
		n, err := ino.Read(buf)
		if err != nil {
			return
		}
		wds := parseEvents(buf[:n])
		if len(wds) == 0 {
			continue
		}
		select {
		case w.events <- wds:
		case <-w.quit:
			return
		}
		pause.Reset(time.Until(nextTick(time.Now())))
		select {
		case <-pause.C:
		case <-w.quit:
			return
		}
	}
}

// nextTick is the first tick of the watcher's clock at or after t.
func nextTick(t time.Time) time.Time {
	if tt := t.Truncate(batch); tt.Before(t) {
		return tt.Add(batch)
	}
	return t
}

// parseEvents returns the watches that saw a write, and -1 for an overflow.
func parseEvents(buf []byte) []int32 {
	var wds []int32
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		wd := int32(binary.NativeEndian.Uint32(buf[off:]))
		mask := binary.NativeEndian.Uint32(buf[off+4:])
		nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
		off += unix.SizeofInotifyEvent + nameLen
		switch {
		case mask&unix.IN_Q_OVERFLOW != 0:
			wds = append(wds, -1)
		case mask&unix.IN_MODIFY != 0:
			wds = append(wds, wd)
		}
	}
	return wds
}

// loop looks at the files whose watch fired, re-arms watches when their delay
// is over, and closes the files of ended watches, until Close.
func (w *Watcher) loop() {
	defer w.wg.Done()
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		w.mu.Lock()
		ended := w.ended
		w.ended = nil
		if len(w.due) > 0 {
			t.Reset(max(time.Until(w.due[0].at), 0))
		}
		w.mu.Unlock()
		for _, l := range ended {
			l.use.Lock()
			w.release(l)
			l.use.Unlock()
		}
		select {
		case wds := <-w.events:
			w.woken(wds)
		case <-t.C:
			w.dueNow()
		case <-w.wake:
		case <-w.quit:
			t.Stop()
			return
		}
		t.Stop()
	}
}

// woken re-arms the watches that fired and looks at their files: re-armed
// first, so that what is written after the look wakes them again.
func (w *Watcher) woken(wds []int32) {
	var look []*Live
	w.mu.Lock()
	for _, wd := range wds {
		if wd == -1 { // events were lost: look at every watched file
			for _, l := range w.lives {
				if !l.ended && !l.polled {
					w.disarmLocked(l)
					look = append(look, l)
				}
			}
			continue
		}
		if l := w.byWD[wd]; l != nil {
			delete(w.byWD, wd) // a one-shot watch is gone once it fired
			l.wd = -1
			if !l.ended {
				look = append(look, l)
			}
		}
	}
	for _, l := range look {
		if l.wd < 0 {
			w.armLocked(l)
		}
	}
	w.mu.Unlock()
	for _, l := range look {
		w.check(l)
	}
}

// dueNow looks at the files without a watch whose time has come.
func (w *Watcher) dueNow() {
	now := time.Now()
	var look []*Live
	w.mu.Lock()
	for len(w.due) > 0 && !w.due[0].at.After(now) {
		l := heap.Pop(&w.due).(dueItem).l
		l.scheduled = false
		if !l.ended {
			look = append(look, l)
		}
	}
	w.mu.Unlock()
	for _, l := range look {
		w.check(l)
	}
}

// check looks at the file's size and rotates it if it is over its cap. A file
// without a watch is scheduled for its next look: once it could have filled
// the room left at assumedRate, and at least pollDelay apart.
func (w *Watcher) check(l *Live) {
	l.use.Lock()
	defer l.use.Unlock()
	if l.closed {
		return
	}
	size, err := fileSize(l.f)
	if err != nil {
		return
	}
	if size > l.max {
		if err := w.rotate(l, size); err != nil && !errors.Is(err, errAborted) {
			w.log.Warn("live log file not rotated", "file", l.path, "err", err)
		}
		if size, err = fileSize(l.f); err != nil {
			return
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if l.polled || w.ino == nil {
		d := time.Duration(float64(max(l.max-size, 0)) / assumedRate * float64(time.Second))
		w.scheduleLocked(l, min(max(d, pollDelay), maxDelay))
	}
}

var errAborted = errors.New("rotation abandoned: the file is no longer watched")

// rotate moves the head of the file (size bytes long) into its next part.
func (w *Watcher) rotate(l *Live, size int64) error {
	if l.bsize == 0 {
		var st unix.Statfs_t
		if err := unix.Fstatfs(int(l.f.Fd()), &st); err != nil || st.Bsize <= 0 {
			l.bsize = 4096
		} else {
			l.bsize = st.Bsize
		}
	}
	cut := size
	if !l.truncate {
		// Whole blocks, and never up to the end: the kernel refuses both.
		if cut = (size - 1) / l.bsize * l.bsize; cut <= 0 {
			return nil // under one block: nothing to cut yet
		}
	}
	final := PartPath(l.path, l.next)
	tmp := final + tmpSuffix
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	defer dst.Close()
	if err := w.copyRange(l, dst, 0, cut); err != nil {
		os.Remove(tmp)
		return err
	}
	if !l.truncate {
		// The collapse writes back what stays in the file (written since the
		// copy began) while it holds the file, and the process waits: write it
		// back now, so that little is left for then.
		unix.SyncFileRange(int(l.f.Fd()), cut, 0, unix.SYNC_FILE_RANGE_WAIT_BEFORE|unix.SYNC_FILE_RANGE_WRITE|unix.SYNC_FILE_RANGE_WAIT_AFTER)
	}
	if err := w.publish(l, dst, cut, tmp, final); err != nil {
		return err
	}
	if l.onRotate != nil {
		l.onRotate()
	}
	return nil
}

// publish cuts the head that dst holds from the file and makes dst the next
// part, at once for readers.
func (w *Watcher) publish(l *Live, dst *os.File, n int64, tmp, final string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := w.cut(l, dst, n)
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("part %s: %w (its bytes are in %s)", final, err, tmp)
	}
	l.parts = append(l.parts, Part{Path: final, N: l.next, Start: l.removed, Size: n})
	l.removed += n
	l.next++
	return nil
}

// cut removes the first n bytes of the file, which dst holds, and returns how
// many it removed. The caller holds l.mu.
func (w *Watcher) cut(l *Live, dst *os.File, n int64) (int64, error) {
	if !l.truncate {
		err := unix.Fallocate(int(l.f.Fd()), unix.FALLOC_FL_COLLAPSE_RANGE, 0, n)
		if err == nil {
			return n, nil
		}
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
			return 0, fmt.Errorf("collapse: %w", err)
		}
		w.log.Info("file system cannot cut a file's head: live log files are copied and truncated, "+
			"which loses what is written during the truncation", "file", l.path, "err", err)
		l.truncate = true
	}
	// Copy what came since, in rounds that shrink, then truncate: what is
	// written between the last look at the size and the truncation is lost.
	// Readers wait on l.mu meanwhile, so no reader saw those bytes.
	for range 4 {
		size, err := fileSize(l.f)
		if err != nil {
			return 0, err
		}
		if size == n {
			break
		}
		if err := w.copyRange(l, dst, n, size-n); err != nil {
			return 0, err
		}
		n = size
	}
	if err := l.f.Truncate(0); err != nil {
		return 0, err
	}
	return n, nil
}

// copyRange appends n bytes of the live file from offset off to dst, in
// chunks, in the kernel where it can (copy_file_range, which also clones on
// XFS and btrfs). It gives up with errAborted when the file is unwatched or
// the watcher closes.
func (w *Watcher) copyRange(l *Live, dst *os.File, off, n int64) error {
	src := l.f
	for n > 0 {
		select {
		case <-w.quit:
			return errAborted
		default:
		}
		if l.unwatched.Load() {
			return errAborted
		}
		chunk := int(min(n, copyChunk))
		roff := off
		got, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), nil, chunk, 0)
		if err != nil {
			if !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) &&
				!errors.Is(err, unix.EOPNOTSUPP) {
				return err
			}
			got, err = copyPlain(dst, src, off, int64(chunk))
			if err != nil {
				return err
			}
		}
		if got == 0 {
			return io.ErrUnexpectedEOF
		}
		off += int64(got)
		n -= int64(got)
	}
	return nil
}

func copyPlain(dst, src *os.File, off, n int64) (int, error) {
	got, err := io.Copy(dst, io.NewSectionReader(src, off, n))
	return int(got), err
}

func fileSize(f *os.File) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

type dueItem struct {
	at time.Time
	l  *Live
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
