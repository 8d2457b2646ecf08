package procman

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// probeTimeout bounds Ping's write probe.
	probeTimeout = time.Second
	// probeFresh is how long a committed probe vouches for the database: a
	// flood of health checks costs one write a second.
	probeFresh = time.Second
	// minFreeBytes is the free space below which the database's disk counts as
	// full: SQLite could not grow its write-ahead log by a page.
	minFreeBytes = 64 << 10
)

// Ping reports whether ProcMan can keep its records: nil while the database
// takes writes. Otherwise ErrClosed after Shutdown, or an error saying what is
// wrong: the database file was deleted or replaced under ProcMan, it or its
// file system is read-only, its disk is full (SQLite), the host's lock on the
// database was lost with its connection (PostgreSQL), its writes have been
// failing (and how many wait), or a write did not commit within a second. It
// waits for that second at most; concurrent calls share one probe, and a
// probe that committed vouches for a second while no other write waits.
func (m *Manager) Ping(ctx context.Context) error {
	if m.isClosed() {
		return ErrClosed
	}
	if err := m.lock.held(); err != nil {
		return err
	}
	if err := m.store.checkFile(); err != nil {
		return err
	}
	return m.w.probe(ctx)
}

// probe queues a write and waits for it to commit, unless one did within
// probeFresh and nothing waits since; concurrent callers share one. A writer
// that is failing answers at once with its last error.
func (w *writer) probe(ctx context.Context) error {
	w.mu.Lock()
	if w.lastErr != nil {
		err := fmt.Errorf("database writes failing for %s, %d waiting: %w",
			time.Since(w.failing).Round(time.Millisecond), len(w.ops), w.lastErr)
		w.mu.Unlock()
		return err
	}
	if len(w.ops) == 0 && time.Since(w.probed) < probeFresh {
		w.mu.Unlock()
		return nil
	}
	if w.probing == 0 {
		w.probing = w.enqueueLocked(op{apply: w.probeOp})
	}
	seq := w.probing
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if err := w.waitFor(ctx, seq); err != nil {
		return fmt.Errorf("database write did not commit within %s: %w", probeTimeout, err)
	}
	return nil
}

// checkFile looks for what a write probe can miss: SQLite goes on writing to
// a file deleted or replaced under it (all of it lost when ProcMan stops), and
// to one made read-only (the next Open fails); a disk too full for the next
// page may still take writes into pages SQLite already has. A PostgreSQL
// server keeps its files to itself, and refuses a write it cannot keep: the
// write probe and the writer's failures tell all there is.
func (s *store) checkFile() error {
	if s.pg {
		return nil
	}
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("database %s was deleted while in use: what ProcMan records now is lost when it stops", s.path)
	case err != nil:
		return fmt.Errorf("database %s: %w", s.path, err)
	case !os.SameFile(fi, s.file):
		return fmt.Errorf("database %s was replaced while in use: ProcMan still writes to the file it opened, "+
			"which that name no longer reaches", s.path)
	}
	if err := unix.Access(s.path, unix.W_OK); err != nil {
		return fmt.Errorf("database %s cannot be written: %w", s.path, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(s.path), &st); err == nil && st.Blocks > 0 {
		free := st.Bavail
		if os.Geteuid() == 0 {
			free = st.Bfree // root may use the blocks kept for it
		}
		if free*uint64(st.Bsize) < minFreeBytes {
			return fmt.Errorf("database %s: its disk is full (%d bytes free)", s.path, free*uint64(st.Bsize))
		}
	}
	return nil
}
