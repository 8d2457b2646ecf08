package runlog

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Part is one rotated part of a run's output.
type Part struct {
	Path string
	N    int // 1 for the oldest
	// Start is where its first byte sits in the run's output; for the parts of
	// a finished run, read from the disk, it counts only the parts still there.
	Start int64
	Size  int64
}

// PartPath is the path of part n of the run whose main file is main.
func PartPath(main string, n int) string {
	return fmt.Sprintf("%s.%06d.log", strings.TrimSuffix(main, ".log"), n)
}

const tmpSuffix = ".tmp"

// splitPart reports the main file and number of a part's file name.
func splitPart(name string) (main string, n int, ok bool) {
	base, ok := strings.CutSuffix(name, ".log")
	if !ok {
		return "", 0, false
	}
	i := strings.LastIndexByte(base, '.')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(base[i+1:])
	if err != nil || n <= 0 || strings.Trim(base[i+1:], "0123456789") != "" {
		return "", 0, false
	}
	return base[:i] + ".log", n, true
}

// ListParts returns the parts in dir by the path of their main file, oldest
// first, with their sizes. A missing dir has none.
func ListParts(dir string) (map[string][]Part, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out map[string][]Part
	for _, e := range ents {
		main, n, ok := splitPart(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		if out == nil {
			out = make(map[string][]Part)
		}
		main = filepath.Join(dir, main)
		out[main] = append(out[main], Part{Path: filepath.Join(dir, e.Name()), N: n, Size: fi.Size()})
	}
	for main, ps := range out {
		slices.SortFunc(ps, func(a, b Part) int { return a.N - b.N })
		var start int64
		for i := range ps {
			ps[i].Start = start
			start += ps[i].Size
		}
		out[main] = ps
	}
	return out, nil
}

// Parts returns the parts of the run whose main file is main, oldest first.
func Parts(main string) ([]Part, error) {
	all, err := ListParts(filepath.Dir(main))
	return all[main], err
}

// Recover removes what an interrupted rotation left of the run whose main file
// is main (a part still being written, whose bytes are also in main), and
// returns the size of the run's files.
func Recover(main string) int64 {
	tmps, _ := filepath.Glob(globEscape(strings.TrimSuffix(main, ".log")) + ".*.log" + tmpSuffix)
	for _, t := range tmps {
		os.Remove(t)
	}
	var total int64
	if fi, err := os.Stat(main); err == nil {
		total = fi.Size()
	}
	parts, _ := Parts(main)
	for _, p := range parts {
		total += p.Size
	}
	return total
}

// globEscape quotes the characters filepath.Match treats specially.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
