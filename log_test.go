package procman

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a log destination safe for the Manager's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A state change is logged with the attributes that carry something: a pid
// while there is one, an error when there is one, never pid=0 or error="".
func TestTransitionLogOmitsEmptyAttributes(t *testing.T) {
	w := setup(t)
	var out lockedBuffer
	m := w.open(Config{DBPath: filepath.Join(w.dir, "log.db"), LogDir: filepath.Join(w.dir, "log-logs"),
		Logger: slog.New(slog.NewTextHandler(&out, nil))})
	ctx := context.Background()
	if err := m.Create(ctx, Job{Name: "web", Command: "sleep 100", Type: Continuous}); err != nil {
		t.Fatal(err)
	}
	if err := m.Create(ctx, Job{Name: "bad", Command: "true", Type: OneTime, Dir: filepath.Join(w.dir, "missing")}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "bad"} {
		if err := m.Start(ctx, name); err != nil && !errors.Is(err, ErrStartFailed) {
			t.Fatal(err)
		}
	}
	if _, err := m.WaitFor(ctx, "bad", StateError); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, `msg="job state"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) < 5 {
		t.Fatalf("only %d state lines:\n%s", len(lines), out.String())
	}
	seen := map[string]bool{}
	for _, l := range lines {
		if strings.Contains(l, "pid=0") || strings.Contains(l, `error=""`) {
			t.Errorf("empty attribute in %q", l)
		}
		seen["pid"] = seen["pid"] || strings.Contains(l, "job=web from=starting to=running pid=")
		seen["error"] = seen["error"] || strings.Contains(l, "job=bad from=starting to=error error=")
	}
	if !seen["pid"] || !seen["error"] {
		t.Errorf("a pid or an error is missing where there is one (%v):\n%s", seen, strings.Join(lines, "\n"))
	}
}
