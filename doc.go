// Package procman runs and supervises shell commands ("jobs") on one host.
//
// A Manager keeps job definitions and run history in SQLite (Config.DBPath)
// or PostgreSQL (Config.Postgres), runs each job as /bin/sh -c
// COMMAND in its own process group with its output written straight to
// LogDir/<job>/<unix-nanoseconds>.log, restarts continuous jobs with
// exponential backoff, and stops every process of a job's group, grandchildren
// included. The REST API (package httpapi) and the procman binary are thin
// wrappers over it; any Go program can embed a Manager directly:
//
//	m, err := procman.Open(ctx, procman.Config{DBPath: "jobs.db", LogDir: "logs"})
//	if err != nil { ... }
//	defer m.Shutdown(ctx)
//	err = m.Create(ctx, procman.Job{Name: "web", Command: "python3 -m http.server", Type: procman.Continuous})
//	err = m.Start(ctx, "web")
//	st, err := m.WaitFor(ctx, "web", procman.StateRunning)
//
// Replace saves a whole new definition; Update changes some fields of the
// saved one, in turn with every other change of the job, so that concurrent
// edits of different fields all take effect:
//
//	j, err := m.Update(ctx, "web", func(j *procman.Job) error { j.User = "www-data"; return nil })
//	j, err = m.Update(ctx, "web", procman.MergePatch([]byte(`{"env":{"DEBUG":null}}`)))
//
// # States
//
// A job is stopped, starting, running, retrying, error, stopping, exited or
// unknown; the allowed transitions are listed in state.go and in the README.
//
// # Never an orphan
//
// Each run gets a parent-death signal, and each Manager has one small guardian
// process (an awk script) that learns every run's process group as it starts
// and ends. If the Manager's process dies, even by SIGKILL, the guardian's pipe
// reaches end of file and it kills every group still listed; if the guardian
// dies, the Manager starts a new one at once and tells it every live group. A
// job that moves itself to a new session or process group (setsid) escapes
// both. With Config.Subreaper, the Manager also adopts and reaps every orphan
// of its jobs.
//
// # Logs
//
// A run's output goes to its log file, written by the run itself. Past
// Job.MaxRunLogBytes (Config.MaxRunLogBytes), the oldest part of a running
// run's file moves to a numbered file of the run; Logs reads the parts and the
// file in order, and a follower of a job goes on into its next runs.
// Retention (keep_runs, max_log_bytes) counts every run and every part.
//
// # The database
//
// A Manager holds its database for its host, from Open to Shutdown: a flock
// on a file beside a SQLite database, a session's advisory lock keyed by the
// host's name on PostgreSQL. Open fails with ErrLocked, naming the holder,
// while another Manager of the host holds it. On PostgreSQL, a lock lost with
// its connection is taken again as soon as the server lets it, and Ping fails
// meanwhile. Each job numbers its runs 1, 2, 3, ...; each run records the host
// that ran it. Migrations are kept per dialect; on PostgreSQL they run in one
// transaction under an advisory lock, which a crash never leaves behind.
// Run records, retention and desired states are queued to one writer
// goroutine and written in order, retried until the database takes them, so
// a slow or locked database never delays supervision; Runs, Run and Logs wait
// for what was queued before them. Definitions (Create, Replace, Delete) are
// written before those calls return. Ping reports a database that cannot be
// written.
//
// # Dependencies
//
// Job.DependsOn names the jobs a job needs, each with a Condition. A start
// first starts those that are not active, then waits, in StateStarting
// with Status.WaitingFor, until every condition holds; a dependency that
// cannot meet its condition, or Job.StartTimeout, puts the job in
// StateError naming it. A stop stops the active jobs that depend on the job
// first (StopWithDependents says which); Open starts dependencies first and
// Shutdown stops dependents first. Delete refuses a job others depend on
// (ErrInUse).
//
// # Desired state
//
// A continuous job started, and not stopped by hand since, is started again
// by the next Open (trigger resume), after a shutdown or a crash; see
// Config.NoResume.
//
// # Jobs in a file
//
// A Document is the jobs a YAML or JSON file declares (ParseDocument reads
// one, with every problem's job, field and line). Apply makes the jobs what
// it says, after checking all of it: it creates, updates (a running job
// keeps its run) and, with Prune, deletes the jobs of the document's source
// it no longer has, all written in one transaction, and returns the Plan.
// Its depends_on are checked against the jobs there would be after it, and
// its starts and restarts go dependencies first.
// Each job keeps its source: SourceAPI for one made one at a time, which no
// prune deletes. Config.JobsFile is applied at Open, and Reload applies it
// again.
//
// # Contexts
//
// A ctx bounds the wait for a call to begin (for the job to be free of other
// changes) and, for Stop, Runs, Logs and WaitFor, the wait for its answer. A
// change once begun finishes even if ctx ends: Restart starts again what it
// stopped, Delete removes what it stopped, Create, Replace and Update store
// and apply the whole definition, a stop is carried through by the job's
// supervisor, and one that stops dependents first carries them all through,
// in order, before it returns. A ctx that has already ended begins nothing.
//
// # Events
//
// Subscribe delivers every state change of every job, each with the job's
// whole Status after it, so that a subscriber keeps its view of the jobs with
// no rule of the state machine of its own. AllEntries lists the jobs with a
// Version per definition, for whoever keeps what it derives from them.
//
// # Errors
//
// Methods return errors wrapping ErrNotFound, ErrExists, ErrInvalid (as a
// *FieldError naming the field; a definition's every problem, joined:
// FieldErrors lists them), ErrRunning, ErrInUse, ErrClosed, ErrStopFailed,
// ErrLocked or ErrStartFailed (a start whose first run could not be spawned,
// or whose dependencies could not meet their conditions); check them with
// errors.Is.
package procman
