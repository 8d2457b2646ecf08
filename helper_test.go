package procman

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun/driver/sqliteshim"
)

// helperVar makes the test binary a helper process (see TestMain), as
// os/exec's tests do: a real process whose behaviour the test scripts.
const helperVar = "PROCMAN_TEST_HELPER"

// runHelper is the helper process. "manager": open a Manager on the database
// $PROCMAN_TEST_DB (a SQLite path or a PostgreSQL URL) with its logs in
// $PROCMAN_TEST_LOGS, create and start the continuous job "svc", print
// "ready" and wait to be killed: a ProcMan that will crash. "setpgid": move to
// the process group $PROCMAN_TEST_PGID, print "left" and wait to be killed.
func runHelper(mode string) int {
	switch mode {
	case "manager":
		return runManagerHelper()
	case "setpgid":
		pgid, err := strconv.Atoi(os.Getenv("PROCMAN_TEST_PGID"))
		if err == nil {
			err = syscall.Setpgid(0, pgid)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
		fmt.Println("left")
		time.Sleep(time.Hour)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown helper", mode)
	return 2
}

func runManagerHelper() int {
	// An hour's lease: on PostgreSQL the next Open must know the crashed
	// holder dead by its process, not wait for its lease to end.
	cfg := Config{DBPath: os.Getenv("PROCMAN_TEST_DB"), LogDir: os.Getenv("PROCMAN_TEST_LOGS"), Lease: time.Hour}
	if isPostgresURL(cfg.DBPath) {
		cfg.DBPath, cfg.Postgres = "", cfg.DBPath
	}
	ctx := context.Background()
	m, err := Open(ctx, cfg)
	if err == nil {
		err = m.Create(ctx, Job{Name: "svc", Command: "sleep 1000", Type: Continuous})
	}
	if err == nil {
		err = m.Start(ctx, "svc")
	}
	if err == nil {
		err = m.w.sync(ctx) // its start is recorded: what a crash may lose is not what is tested
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Println("ready")
	select {}
}

// startCrashingManager runs the "manager" helper on cfg's database and logs,
// and returns once it is ready; SIGKILL it to crash it. Cleanup kills it if
// the test did not.
func startCrashingManager(t *testing.T, cfg Config) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperVar+"=manager", "PROCMAN_TEST_DB="+cfg.DBPath+cfg.Postgres,
		"PROCMAN_TEST_LOGS="+cfg.LogDir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Its own group: a kill of the test's group never reaches it by accident.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper manager: %q, %v", line, err)
	}
	return cmd
}

// holdDB takes cfg's database's write lock from a connection of its own, as
// another program holding BEGIN EXCLUSIVE (SQLite) or LOCK TABLE ... IN
// EXCLUSIVE MODE (PostgreSQL) would, until release is called (cleanup calls
// it too). ProcMan can still read; it cannot write.
func holdDB(t *testing.T, cfg Config) (release func()) {
	t.Helper()
	if cfg.Postgres != "" {
		return holdPostgres(t, cfg.Postgres)
	}
	ctx := context.Background()
	db, err := sql.Open(sqliteshim.ShimName, "file:"+cfg.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err == nil { // wait out a transaction of ProcMan's own
		_, err = conn.ExecContext(ctx, "PRAGMA busy_timeout = 10000")
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, "BEGIN EXCLUSIVE")
	}
	if err != nil {
		db.Close()
		t.Fatalf("lock the database: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			conn.ExecContext(ctx, "ROLLBACK")
			conn.Close()
			db.Close()
		})
	}
	t.Cleanup(release)
	return release
}

func holdPostgres(t *testing.T, dsn string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, "LOCK TABLE jobs, runs, health IN EXCLUSIVE MODE")
	}
	if err != nil {
		conn.Close(ctx)
		t.Fatalf("lock the database: %v", err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			tx.Rollback(ctx)
			conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}
