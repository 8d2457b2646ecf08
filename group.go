package procman

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"
)

// signalGroup sends sig to every process of group pgid. A group that is already
// gone is not an error.
func signalGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// groupAlive reports whether any live (non-zombie) process is in group pgid.
// kill(-pgid, 0) alone is not enough: an init that does not reap (common in
// containers) leaves exited grandchildren as zombies that still count as members.
func groupAlive(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	d, err := os.Open("/proc")
	if err != nil {
		return true
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if st, pg, ok := readStat(n); ok && pg == pgid && st != 'Z' && st != 'X' {
			return true
		}
	}
	return false
}

// readStat returns the state and process group of /proc/<pid>/stat.
func readStat(pid string) (state byte, pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// The command name may hold spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:]) // state ppid pgrp ...
	if len(f) < 3 {
		return 0, 0, false
	}
	pg, err := strconv.Atoi(string(f[2]))
	if err != nil || len(f[0]) == 0 {
		return 0, 0, false
	}
	return f[0][0], pg, true
}

// waitGroupGone polls until group pgid has no live process, or until stop
// fires. Only stopping jobs poll, and the wait grows from 1ms to 50ms, so an
// idle Manager does no work here.
func waitGroupGone(pgid int, stop <-chan time.Time, force <-chan struct{}) bool {
	wait := time.Millisecond
	for groupAlive(pgid) {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stop:
			t.Stop()
			return !groupAlive(pgid)
		case <-force:
			t.Stop()
			return !groupAlive(pgid)
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
	return true
}
