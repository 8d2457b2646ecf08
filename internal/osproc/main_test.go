//go:build linux

package osproc

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gone reports whether pid has exited. A zombie counts as gone: an init that
// does not reap leaves killed orphans as zombies.
func gone(pid int) bool {
	st, ok := ReadStat(pid)
	return !ok || !st.Alive()
}

// eventually polls cond until it holds or 10 seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// newTestReaper returns a Reaper that the test's cleanup closes. One that
// adopts makes the test process a subreaper until then.
func newTestReaper(t *testing.T, adopt bool) *Reaper {
	t.Helper()
	rp, err := NewReaper(adopt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rp.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return rp
}
