package procman

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// helperVar makes the test binary a helper process (see TestMain), as
// os/exec's tests do: a real process whose behaviour the test scripts.
const helperVar = "PROCMAN_TEST_HELPER"

// runHelper is the helper process. "manager": open a Manager on the database
// $PROCMAN_TEST_DB, create and start the continuous job "svc", print "ready"
// and wait to be killed: a ProcMan that will crash.
func runHelper(mode string) int {
	if mode != "manager" {
		fmt.Fprintln(os.Stderr, "unknown helper", mode)
		return 2
	}
	db := os.Getenv("PROCMAN_TEST_DB")
	ctx := context.Background()
	m, err := Open(ctx, Config{DBPath: db, LogDir: filepath.Join(filepath.Dir(db), "logs")})
	if err == nil {
		err = m.Create(ctx, Job{Name: "svc", Command: "sleep 1000", Type: Continuous})
	}
	if err == nil {
		err = m.Start(ctx, "svc")
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
