package procman

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman/internal/runlog"
)

// numbered is the output of numberedCmd: n lines of 45 bytes.
func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "%07d abcdefghijklmnopqrstuvwxyz0123456789\n", i)
	}
	return b.String()
}

// numberedCmd writes numbered(1, n) in bursts of burst lines, pausing between
// them, then sleeps: one process, writing straight into its log.
func numberedCmd(n, burst int) string {
	return fmt.Sprintf(`awk 'BEGIN { for (i = 1; i <= %d; i++) { printf "%%07d abcdefghijklmnopqrstuvwxyz0123456789\n", i; `+
		`if (i %% %d == 0) { fflush(); system("sleep 0.05") } } }'; exec sleep 1000`, n, burst)
}

// liveSize is the size of the running run's live file.
func liveSize(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// A running run's log grows past max_run_log_bytes: its oldest part moves to
// a numbered file of the run while the job goes on, and the run's output,
// read through Logs, is whole and in order, live and once the run is over.
// Log files are not readable by others.
func TestRunningLogIsCappedWithoutStoppingTheJob(t *testing.T) {
	w := setup(t)
	const lines, capBytes = 100_000, 64 << 10 // 4.5 MB of output
	w.create(Job{Name: "chatty", Type: Continuous, MaxRunLogBytes: capBytes, Command: numberedCmd(lines, 25_000)})
	w.start("chatty")
	st := w.waitFor("chatty", StateRunning)
	eventually(t, "the whole output written and the live file under its cap", func() bool {
		out := readLogs(t, w, "chatty", LogOptions{})
		return len(out) == len(numbered(1, lines)) && liveSize(t, st.LogFile) <= capBytes
	})
	if now, _ := w.m.State("chatty"); now.State != StateRunning || now.PID != st.PID {
		t.Fatalf("the job did not go on: %+v, was pid %d", now, st.PID)
	}
	if got := readLogs(t, w, "chatty", LogOptions{}); got != numbered(1, lines) {
		t.Fatalf("the running run's output is not whole and in order (%d bytes)", len(got))
	}
	if got := readLogs(t, w, "chatty", LogOptions{Tail: 2}); got != numbered(lines-1, lines) {
		t.Errorf("tail 2: %q", got)
	}
	parts, err := runlog.Parts(st.LogFile)
	if err != nil || len(parts) == 0 {
		t.Fatalf("no parts: %v", err)
	}
	for _, f := range append(w.logFiles("chatty"), st.LogFile) {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v (%v), want 0640", f, fi.Mode().Perm(), err)
		}
	}
	if fi, _ := os.Stat(filepath.Dir(st.LogFile)); fi.Mode().Perm() != 0o750 {
		t.Errorf("log folder mode %v, want 0750", fi.Mode().Perm())
	}
	w.stop("chatty")
	if got := readLogs(t, w, "chatty", LogOptions{}); got != numbered(1, lines) {
		t.Fatalf("the finished run's output is not whole and in order (%d bytes)", len(got))
	}
}

func readLogs(t *testing.T, w *world, name string, opts LogOptions) string {
	t.Helper()
	rc, err := w.m.Logs(ctxT(t), name, opts)
	if err != nil {
		t.Fatal(err)
	}
	return readAll(t, rc)
}

// Rotated parts of the running run count toward keep_runs (one each) and
// max_log_bytes: a service that logs without end keeps only its newest parts,
// and what Logs reads is the end of its output.
func TestRotatedPartsCountTowardRetention(t *testing.T) {
	w := setup(t)
	const lines, capBytes = 15_000, 16 << 10 // 30 bursts of 22 KB
	w.create(Job{Name: "keep", Type: Continuous, KeepRuns: 3, MaxRunLogBytes: capBytes, Command: numberedCmd(lines, 500)})
	w.create(Job{Name: "size", Type: Continuous, MaxLogBytes: 60_000, MaxRunLogBytes: capBytes, Command: numberedCmd(lines, 500)})
	w.start("keep")
	w.start("size")
	for _, name := range []string{"keep", "size"} {
		st := w.waitFor(name, StateRunning)
		// Retention follows each rotation: wait until the last one has been applied.
		eventually(t, name+": the whole output written, rotated and pruned", func() bool {
			out := readLogs(t, w, name, LogOptions{Tail: 1})
			parts, _ := runlog.Parts(st.LogFile)
			var total int64
			for _, p := range parts {
				total += p.Size
			}
			within := len(parts) <= 3
			if name == "size" {
				within = total <= 60_000
			}
			return out == numbered(lines, lines) && liveSize(t, st.LogFile) <= capBytes && within && parts[0].N > 2
		})
		out := readLogs(t, w, name, LogOptions{})
		if all := numbered(1, lines); len(out) >= len(all) || !strings.HasSuffix(all, out) {
			t.Errorf("%s: read %d bytes, want the end of the output", name, len(out))
		}
	}
	w.stop("keep")
	w.stop("size")
}

// The live file's cap is a job field, kept with the job.
func TestMaxRunLogBytesIsPersisted(t *testing.T) {
	w := setup(t)
	w.create(Job{Name: "j", Command: "true", Type: OneTime, MaxRunLogBytes: 12345})
	if err := w.m.Create(ctxT(t), Job{Name: "bad", Command: "true", Type: OneTime, MaxRunLogBytes: -1}); err == nil ||
		!strings.Contains(err.Error(), "max_run_log_bytes") {
		t.Errorf("negative max_run_log_bytes: %v", err)
	}
	if err := w.m.Shutdown(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	m2 := w.open(w.m.cfg)
	if j, err := m2.Get("j"); err != nil || j.MaxRunLogBytes != 12345 {
		t.Fatalf("after reopen: %+v %v", j, err)
	}
	if _, err := Open(ctxT(t), Config{DBPath: filepath.Join(w.dir, "other.db"), MaxRunLogBytes: -1}); err == nil {
		t.Error("a negative Config.MaxRunLogBytes was accepted")
	}
}

// The retention plan, file by file: newest first, the running run's parts,
// then each finished run's last file and parts; the newest finished run's
// last file is always kept.
func TestPlanRetention(t *testing.T) {
	rows := []runRow{{ID: 3, LogFile: "3.log"}, {ID: 2, LogFile: "2.log"}, {ID: 1, LogFile: "1.log"}}
	parts := map[string][]runlog.Part{"2.log": {{Path: "2.000001.log", N: 1, Size: 10}, {Path: "2.000002.log", N: 2, Size: 10}}}
	live := []runlog.Part{{Path: "4.000001.log", N: 1, Size: 10}, {Path: "4.000002.log", N: 2, Size: 10}}
	size := func(string) int64 { return 10 }
	for _, tc := range []struct {
		name     string
		set      settings
		remove   []string
		del      []int64
		pruned   []int64
		dropLive int
	}{
		{"every file counts toward keep_runs", settings{keepRuns: 4}, []string{"2.000002.log", "2.000001.log", "1.log"}, nil, []int64{1}, 0},
		{"and toward max_log_bytes", settings{keepRuns: 100, maxLogBytes: 25},
			[]string{"2.log", "2.000002.log", "2.000001.log", "1.log"}, nil, []int64{2, 1}, 0},
		{"the running run's oldest parts go", settings{keepRuns: 1},
			[]string{"2.log", "2.000001.log", "2.000002.log", "1.log"}, []int64{2, 1}, nil, 1},
		{"nothing beyond the limits", settings{keepRuns: 100, maxLogBytes: 1000}, nil, nil, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planRetention(tc.set, 0, rows, parts, live, size)
			if fmt.Sprint(p.remove) != fmt.Sprint(tc.remove) || fmt.Sprint(p.del) != fmt.Sprint(tc.del) ||
				fmt.Sprint(p.pruned) != fmt.Sprint(tc.pruned) || p.dropLive != tc.dropLive {
				t.Errorf("plan %+v, want remove %v, del %v, pruned %v, drop %d", p, tc.remove, tc.del, tc.pruned, tc.dropLive)
			}
		})
	}
}

// A run's rotated parts go with it, although the job's log folder was found
// without any part before the run: retention reads the folder again after a
// rotation, and only then (partsSeen), since most jobs are never rotated.
func TestRotatedPartsOfAnEndedRunGoWithIt(t *testing.T) {
	w := setup(t)
	count := filepath.Join(w.dir, "count")
	bursts := strings.TrimSuffix(numberedCmd(15_000, 500), "; exec sleep 1000")
	// Only the second run writes enough to be rotated, in bursts while it lives.
	cmd := fmt.Sprintf(`n=$(cat %[1]s 2>/dev/null || echo 0); echo $((n+1)) > %[1]s; if [ "$n" = 1 ]; then %[2]s; fi`, count, bursts)
	// keep_runs 2: the newest part of the second run outlasts its end (the
	// run's log, then that part), and the third run's end leaves it beyond.
	w.create(Job{Name: "once", Type: OneTime, KeepRuns: 2, MaxRunLogBytes: 16 << 10, Command: cmd})
	var logs []string
	for run := 1; run <= 3; run++ {
		w.start("once")
		st := w.waitFor("once", StateExited)
		if parts, _ := runlog.Parts(st.LogFile); run == 2 && len(parts) == 0 {
			t.Fatalf("the second run's log was never rotated: %v", w.logFiles("once"))
		}
		logs = append(logs, st.LogFile)
	}
	eventually(t, "only the last two runs' logs left, without parts", func() bool {
		return slices.Equal(w.logFiles("once"), logs[1:])
	})
}
