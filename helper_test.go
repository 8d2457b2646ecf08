package procman

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun/driver/sqliteshim"
)

// helperVar makes the test binary a helper process (see TestMain), as
// os/exec's tests do: a real process whose behaviour the test scripts.
const helperVar = "PROCMAN_TEST_HELPER"

// runHelper is the helper process. "manager": open a Manager on the database
// $PROCMAN_TEST_DB, create and start the continuous job "svc", print "ready"
// and wait to be killed: a ProcMan that will crash. "setpgid": move to the
// process group $PROCMAN_TEST_PGID, print "left" and wait to be killed.
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
	db := os.Getenv("PROCMAN_TEST_DB")
	ctx := context.Background()
	m, err := Open(ctx, Config{DBPath: db, LogDir: filepath.Join(filepath.Dir(db), "logs")})
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

// startCrashingManager runs the "manager" helper on dbPath and returns once it
// is ready; SIGKILL it to crash it. Cleanup kills it if the test did not.
func startCrashingManager(t *testing.T, dbPath string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperVar+"=manager", "PROCMAN_TEST_DB="+dbPath)
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

// holdDB takes the database's write lock from a connection of its own, as
// another program holding BEGIN EXCLUSIVE would, until release is called
// (cleanup calls it too). ProcMan can still read; it cannot write.
func holdDB(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open(sqliteshim.ShimName, "file:"+path)
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
