package httpapi_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
)

// TestRestartOutlivesItsClient: a client that goes away while its restart
// stops the job does not leave the job stopped; the Manager sees the
// restart through.
func TestRestartOutlivesItsClient(t *testing.T) {
	s := setup(t)
	dir := t.TempDir()
	s.create(t, procman.Job{Name: "slow", Type: procman.Continuous, Dir: dir,
		Command: `trap 'sleep 1; exit 0' TERM; : > ready; while :; do sleep 0.05; done`})
	first := s.control(t, http.MethodPost, "slow", "start")
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(pollInterval) { // until SIGTERM runs the trap
		if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("the job never set its trap")
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/job/slow/restart", nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		resp, err := s.client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	wait, stop := context.WithTimeout(context.Background(), waitLimit)
	defer stop()
	if _, err := s.m.WaitFor(wait, "slow", procman.StateStopping); err != nil {
		t.Fatal(err)
	}
	cancel() // the client goes away mid-restart
	<-done
	// The restart's own stop passes through stopped, which the client's return
	// does not wait for: only running again ends the wait, and a restart
	// dropped with its client leaves it to time out.
	st, err := s.m.WaitFor(wait, "slow", procman.StateRunning)
	if err != nil {
		t.Fatalf("after a restart whose client left: %v, want running again", err)
	}
	if st.PID == first.PID {
		t.Fatalf("after the restart: still pid %d, want a new run", st.PID)
	}
}
