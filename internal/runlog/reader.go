package runlog

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"sort"
)

// Reader reads a run's output in order: its parts, then its main file. For a
// running run (a Live), it reads through rotations as they happen: a byte is
// read once, wherever it has moved meanwhile. At the end of what is written
// so far it returns io.EOF; a later Read returns what came since.
type Reader struct {
	main *os.File
	live *Live // nil for a finished run: parts and removed are fixed

	parts   []Part
	removed int64 // where main's first byte sits in the output

	pos   int64    // in the output
	part  *os.File // the part being read, if any
	partN int
}

// Open opens the output of the run whose main file is path; live is its
// Live while it is watched, else nil. A missing main file is an error
// wrapping fs.ErrNotExist.
func Open(path string, live *Live) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := &Reader{main: f, live: live}
	if live == nil {
		if r.parts, err = Parts(path); err != nil {
			f.Close()
			return nil, err
		}
		if n := len(r.parts); n > 0 {
			r.removed = r.parts[n-1].Start + r.parts[n-1].Size
		}
	}
	return r, nil
}

// layout returns the parts and where the main file starts; the caller calls
// unlock once it has read the main file.
func (r *Reader) layout() (parts []Part, removed int64, unlock func()) {
	if r.live == nil {
		return r.parts, r.removed, func() {}
	}
	r.live.mu.RLock()
	return r.live.parts, r.live.removed, r.live.mu.RUnlock
}

func (r *Reader) Read(p []byte) (int, error) {
	for {
		parts, removed, unlock := r.layout()
		if r.pos >= removed {
			n, err := r.main.ReadAt(p, r.pos-removed)
			unlock()
			r.pos += int64(n)
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		unlock()
		// In the parts: the first that ends after pos. Bytes of parts that are
		// gone (retention) are skipped.
		i := sort.Search(len(parts), func(i int) bool { return parts[i].Start+parts[i].Size > r.pos })
		if i == len(parts) {
			r.pos = removed
			continue
		}
		pt := parts[i]
		r.pos = max(r.pos, pt.Start)
		n, err := r.readPart(pt, p)
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// readPart reads part pt at r.pos. At its end, or if it is gone, it moves
// r.pos past it and returns 0, nil.
func (r *Reader) readPart(pt Part, p []byte) (int, error) {
	if r.part == nil || r.partN != pt.N {
		r.closePart()
		f, err := os.Open(pt.Path)
		if errors.Is(err, fs.ErrNotExist) {
			r.pos = pt.Start + pt.Size
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		r.part, r.partN = f, pt.N
	}
	n, err := r.part.ReadAt(p[:min(int64(len(p)), pt.Start+pt.Size-r.pos)], r.pos-pt.Start)
	r.pos += int64(n)
	if n > 0 {
		return n, nil
	}
	if err == io.EOF || err == nil {
		r.pos = pt.Start + pt.Size
		return 0, nil
	}
	return 0, err
}

func (r *Reader) closePart() {
	if r.part != nil {
		r.part.Close()
		r.part = nil
	}
}

// Close closes the files the Reader has open.
func (r *Reader) Close() error {
	r.closePart()
	return r.main.Close()
}

// Tail positions the Reader at the start of the last n lines of what is
// written so far (a final newline ends the last line, it does not start
// another); at the start of the output if it has fewer.
func (r *Reader) Tail(n int) error {
	parts, removed, unlock := r.layout()
	defer unlock()
	fi, err := r.main.Stat()
	if err != nil {
		return err
	}
	segs := make([]segment, 0, len(parts)+1)
	segs = append(segs, segment{r.main, removed, fi.Size(), ""})
	for i := len(parts) - 1; i >= 0; i-- {
		segs = append(segs, segment{nil, parts[i].Start, parts[i].Size, parts[i].Path})
	}
	pos, err := tailOffset(segs, n)
	if err != nil {
		return err
	}
	r.pos = pos
	return nil
}

// segment is one file of the output; segments are newest first.
type segment struct {
	f           io.ReaderAt // nil: open path
	start, size int64
	path        string
}

// tailOffset finds where the last n lines begin, scanning the segments
// (newest first) backwards.
func tailOffset(segs []segment, n int) (int64, error) {
	buf := make([]byte, 32<<10)
	first := true // the output's last byte: a final newline ends a line
	oldest := int64(0)
	for _, s := range segs {
		oldest = s.start
		f := s.f
		if f == nil {
			pf, err := os.Open(s.path)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return 0, err
			}
			defer pf.Close()
			f = pf
		}
		end := s.size
		if first && end > 0 {
			first = false
			if _, err := f.ReadAt(buf[:1], end-1); err != nil {
				return 0, err
			}
			if buf[0] == '\n' {
				end--
			}
		}
		for pos := end; pos > 0; {
			size := min(int64(len(buf)), pos)
			pos -= size
			if _, err := f.ReadAt(buf[:size], pos); err != nil {
				return 0, err
			}
			for i := size - 1; i >= 0; i-- {
				if buf[i] == '\n' {
					if n--; n == 0 {
						return s.start + pos + i + 1, nil
					}
				}
			}
		}
	}
	return oldest, nil
}
