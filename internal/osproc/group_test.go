//go:build linux

package osproc

import (
	"syscall"
	"testing"
)

func TestSignalGroupOfGoneGroup(t *testing.T) {
	// A pgid no process uses: signalling it is not an error, and it is not alive.
	if err := SignalGroup(1<<22-3, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if (&Reaper{}).GroupAlive(1<<22-3, true) {
		t.Fatal("unused group reported alive")
	}
}
