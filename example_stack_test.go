package procman

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExampleStack applies examples/stack/procman.yaml, as procman -config
// would, and runs it: the database comes up healthy, the migration runs once
// after it and exits 0, the web server serves with the schema (it reads it
// at its start: it started after the migration), and the nightly backup
// waits for its tick. A stop of the database stops the web server first.
// The example stays a file ProcMan takes and runs.
func TestExampleStack(t *testing.T) {
	text, err := os.ReadFile("examples/stack/procman.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := ParseDocument(text, YAML)
	if err != nil {
		t.Fatal(err)
	}
	w := setup(t)
	for i := range doc.Jobs {
		doc.Jobs[i].Dir = w.dir // the jobs keep stack-data in their working directory
	}
	p := w.apply(doc, ApplyOptions{Source: "examples/stack/procman.yaml", Prune: true})
	if !slices.Equal(p.Created, []string{"db", "migrate", "nightly", "web"}) {
		t.Fatalf("plan %+v", p)
	}
	w.health("db", HealthHealthy)
	if st := w.waitFor("migrate", StateExited, StateError); st.ExitCode == nil || *st.ExitCode != 0 {
		t.Errorf("migrate: %+v, want exit code 0", st)
	}
	web := w.waitFor("web", StateRunning)
	eventually(t, "web serving", func() bool {
		b, _ := os.ReadFile(web.LogFile)
		return strings.Contains(string(b), "serving on port 8080 with schema 3")
	})
	if st, _ := w.m.State("nightly"); st.State != StateStopped || st.NextRun == nil {
		t.Errorf("nightly: %+v, want it waiting for its tick", st)
	}
	if stopped, err := w.m.StopWithDependents(ctxT(t), "db"); err != nil || !slices.Equal(stopped, []string{"web"}) {
		t.Errorf("stop of db: stopped %v, %v; want web stopped first", stopped, err)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "stack-data", "db.ready")); !os.IsNotExist(err) {
		t.Errorf("db did not shut down cleanly on its stop signal: %v", err)
	}
}
