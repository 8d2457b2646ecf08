package procman

import (
	"testing"
	"time"
)

// PostgreSQL restarted under a running Manager: supervision goes on at its
// own pace while the server is down, Ping says so at once, the writer
// retries, and once the server is back the lease is renewed again and every run
// is in the history.
func TestPostgresRestartUnderTheManager(t *testing.T) {
	srv := pgRestarts.Server(t)
	w := setup(t, Config{Postgres: pgRestarts.DB(t)})
	w.create(Job{Name: "crash", Command: "exit 1", Type: Continuous,
		BackoffInitial: dur(50 * time.Millisecond), BackoffMax: dur(50 * time.Millisecond), MinUptime: dur(time.Hour)})
	w.create(Job{Name: "svc", Command: "sleep 100", Type: Continuous})
	w.start("svc")
	w.start("crash")
	if err := w.m.Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping before the restart: %v", err)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() {
		if !restarted { // for the tests after this one
			srv.Start()
		}
	})

	before := w.until("crash", "a restart", func(st Status) bool { return st.Restarts >= 1 }).Restarts
	if _, err := w.m.waitUntil(within(t, 4*time.Second), "crash", func(st Status) bool {
		return st.Restarts >= before+5
	}); err != nil {
		t.Fatalf("the crash loop stalled while the server was down: %v", err)
	}
	began := time.Now()
	err := w.m.Ping(ctxT(t))
	if err == nil || time.Since(began) > 2*time.Second {
		t.Fatalf("Ping while the server is down: %v after %s, want an error within 2s", err, time.Since(began))
	}
	t.Logf("Ping: %v", err)
	if err := w.m.Stop(within(t, 2*time.Second), "svc"); err != nil {
		t.Fatalf("Stop while the server is down: %v", err)
	}
	if err := w.m.Stop(within(t, 2*time.Second), "crash"); err != nil {
		t.Fatalf("Stop while the server is down: %v", err)
	}

	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	restarted = true
	eventually(t, "Ping healthy once the server is back", func() bool { return w.m.Ping(ctxT(t)) == nil })
	w.allRecorded("crash", "svc")
	for _, msg := range []string{"database write failed; retrying", "database writes resumed", "host lease not renewed", "host lease renewed again"} {
		if !w.logs.has(msg) {
			t.Errorf("not logged: %q", msg)
		}
	}
}
