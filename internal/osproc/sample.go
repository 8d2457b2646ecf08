//go:build linux

package osproc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 in the ABI of every architecture (prometheus/procfs
// assumes so too); asking sysconf(_SC_CLK_TCK) would take cgo.
const userHZ = 100

// GroupUsage is what the processes of one process group cost at a Sample.
type GroupUsage struct {
	// Procs counts its live (not zombie) processes.
	Procs int
	// User and System are the CPU time of its processes, zombies included,
	// and of the children each of them has waited for: what a member reaps
	// stays in the group's figure (as wait4's rusage keeps it too).
	User, System time.Duration
	// RSS is the resident memory of its live processes, in bytes.
	RSS int64
}

// Sample is what every process group cost at one pass over /proc.
type Sample struct {
	groups map[int]*groupSample
}

type groupSample struct {
	GroupUsage
	pids []int // its live processes
}

// Group is what group pgid cost at the sample; zero if it had no process.
func (s *Sample) Group(pgid int) GroupUsage {
	if g := s.groups[pgid]; g != nil {
		return g.GroupUsage
	}
	return GroupUsage{}
}

// PSS reads, now, the proportional set size of the live processes of group
// pgid that the sample found: each page shared by n processes counts 1/n.
// It costs far more than the sample (the kernel walks every mapping of each
// process), so it is read only when asked. ok is false when the kernel
// gives it for none or not for every one of them (smaps_rollup is Linux
// 4.14's; another user's processes may not be readable); a process gone
// since the sample counts for nothing.
func (s *Sample) PSS(pgid int) (pss int64, ok bool) {
	g := s.groups[pgid]
	if g == nil {
		return 0, false
	}
	buf := make([]byte, 4096)
	for _, pid := range g.pids {
		kb, known, gone := readPSS(pid, buf)
		if !known && !gone {
			return 0, false
		}
		pss += kb << 10
	}
	return pss, true
}

func readPSS(pid int, buf []byte) (kb int64, known, gone bool) {
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := readProcFile(unix.AT_FDCWD, dir+"/smaps_rollup", buf)
	if err != nil {
		_, serr := os.Stat(dir) // a process gone, or a kernel without the file
		return 0, false, errors.Is(err, unix.ESRCH) || os.IsNotExist(serr)
	}
	i := bytes.Index(b, []byte("\nPss:"))
	if i < 0 {
		return 0, false, false
	}
	v, ok := parseUint(bytes.TrimLeft(b[i+len("\nPss:"):], " "))
	return int64(v), ok, false
}

// Sampler takes Samples, one pass over /proc at a time: a caller that asks
// while a pass is under way shares it (so its figures may date from up to
// one pass before it asked). Nothing reads /proc between requests.
type Sampler struct {
	mu      sync.Mutex
	cur     *samplePass // the pass under way, if any
	waiting int         // callers sharing it (for tests)
	passes  int         // passes taken (for tests)
	take    func() *Sample
}

type samplePass struct {
	done   chan struct{}
	sample *Sample
}

// Sample returns what every process group costs now. A caller that shares a
// pass under way stops waiting for it when ctx ends; the pass itself, some
// milliseconds per thousand processes, always runs to its end.
func (sm *Sampler) Sample(ctx context.Context) (*Sample, error) {
	sm.mu.Lock()
	if p := sm.cur; p != nil {
		sm.waiting++
		sm.mu.Unlock()
		defer func() { sm.mu.Lock(); sm.waiting--; sm.mu.Unlock() }()
		select {
		case <-p.done:
			return p.sample, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p := &samplePass{done: make(chan struct{})}
	sm.cur = p
	take := sm.take
	sm.mu.Unlock()
	if take == nil {
		take = takeSample
	}
	p.sample = take()
	sm.mu.Lock()
	sm.cur = nil
	sm.passes++
	sm.mu.Unlock()
	close(p.done)
	return p.sample, nil
}

// takeSample reads /proc/<pid>/stat of every process, spread over a few
// goroutines: on a 2-core machine 4,000 files took 70-100 ms one after
// another, 25-40 ms over two to four readers (the kernel's work for each
// file runs in parallel).
func takeSample() *Sample {
	s := &Sample{groups: make(map[int]*groupSample)}
	d, err := os.Open("/proc")
	if err != nil {
		return s
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	dirfd := int(d.Fd())
	n := min(max(runtime.GOMAXPROCS(0), 2), 8)
	parts := make([]map[int]*groupSample, n)
	var wg sync.WaitGroup
	for w := range n {
		wg.Go(func() { parts[w] = readStats(dirfd, names[w*len(names)/n:(w+1)*len(names)/n]) })
	}
	wg.Wait()
	for _, part := range parts {
		for pgid, g := range part {
			if all := s.groups[pgid]; all != nil {
				all.Procs += g.Procs
				all.User += g.User
				all.System += g.System
				all.RSS += g.RSS
				all.pids = append(all.pids, g.pids...)
			} else {
				s.groups[pgid] = g
			}
		}
	}
	return s
}

// eachStat reads the stat file of each process named (entries of /proc,
// dirfd) into one buffer, and gives f those of processes not dead: nothing
// is allocated per process.
func eachStat(dirfd int, names []string, f func(name string, st procStat)) {
	buf := make([]byte, 1024) // a stat line is some 300 bytes, its command name at most 64
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		b, err := readProcFile(dirfd, name+"/stat", buf)
		if err != nil {
			continue // gone meanwhile
		}
		if st, ok := parseStat(b); ok && st.state != 'X' {
			f(name, st)
		}
	}
}

// readStats reads the stat file of each process named and sums them by group.
func readStats(dirfd int, names []string) map[int]*groupSample {
	out := make(map[int]*groupSample)
	page := int64(os.Getpagesize())
	eachStat(dirfd, names, func(name string, st procStat) {
		g := out[st.pgid]
		if g == nil {
			g = &groupSample{}
			out[st.pgid] = g
		}
		g.User += ticks(st.utime + st.cutime)
		g.System += ticks(st.stime + st.cstime)
		if st.state != 'Z' {
			pid, _ := strconv.Atoi(name)
			g.Procs++
			g.RSS += st.rss * page
			g.pids = append(g.pids, pid)
		}
	})
	return out
}

func ticks(n uint64) time.Duration { return time.Duration(n) * (time.Second / userHZ) }

// readProcFile reads a small file of /proc into buf, with no allocation.
func readProcFile(dirfd int, path string, buf []byte) ([]byte, error) {
	fd, err := unix.Openat(dirfd, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
}

// procStat is what a Sample needs of /proc/<pid>/stat.
type procStat struct {
	state                        byte
	pgid                         int
	utime, stime, cutime, cstime uint64 // in USER_HZ ticks
	rss                          int64  // in pages
}

// parseStat reads the fields of a stat line (proc(5)) after the command
// name, which runs to the last ')' and may hold anything.
func parseStat(b []byte) (procStat, bool) {
	var st procStat
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return st, false
	}
	field, seen := 3, 0
	for rest := b[end+1:]; field <= 24; field++ {
		rest = bytes.TrimLeft(rest, " ")
		tok := rest
		if i := bytes.IndexAny(rest, " \n"); i >= 0 {
			tok, rest = rest[:i], rest[i:]
		} else {
			rest = nil
		}
		if len(tok) == 0 {
			return st, false
		}
		v, ok := parseUint(tok)
		switch field {
		case 3:
			st.state, ok = tok[0], true
		case 5:
			st.pgid = int(v)
		case 14:
			st.utime = v
		case 15:
			st.stime = v
		case 16:
			st.cutime = v
		case 17:
			st.cstime = v
		case 24:
			st.rss = int64(v)
		default:
			continue
		}
		if !ok {
			return st, false
		}
		seen++
	}
	return st, seen == 7
}

// parseUint reads the decimal digits b begins with; ok is false if there are none.
func parseUint(b []byte) (v uint64, ok bool) {
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		v, ok = v*10+uint64(c-'0'), true
	}
	return v, ok
}

// Passes counts the passes over /proc taken so far.
func (sm *Sampler) Passes() int {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	return sm.passes
}
