package procman_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/Mk-Chan/procman"
)

// Embedding ProcMan: open a Manager, define a job, run it, read its output.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "procman-example-")
	defer os.RemoveAll(dir)

	m, err := procman.Open(ctx, procman.Config{
		DBPath: filepath.Join(dir, "procman.db"),
		LogDir: filepath.Join(dir, "logs"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Shutdown(ctx)

	err = m.Create(ctx, procman.Job{Name: "hello", Command: "echo hello from $0", Type: procman.OneTime})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Start(ctx, "hello"); err != nil {
		fmt.Println(err)
		return
	}
	st, _ := m.WaitFor(ctx, "hello", procman.StateExited)
	out, _ := os.ReadFile(st.LogFile)
	fmt.Printf("%s, exit code %d: %s", st.State, *st.ExitCode, out)
	// Output: exited, exit code 0: hello from /bin/sh
}
