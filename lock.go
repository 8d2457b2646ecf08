package procman

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// dbLock holds a database for one Manager of a host, from Open to the end of
// Shutdown. Two Managers of one host on one database would each take the
// other's runs for leftovers of a crash and kill them, and number the same
// jobs' runs from memory.
type dbLock interface {
	// held is nil while the lock is held; else it says why not (health.go).
	held() error
	release() error
}

// holdDatabase takes d for this host, or fails with ErrLocked naming the
// holder, having changed nothing, and opens its store. SQLite: a flock
// beside the file (below), then the store. PostgreSQL: the store first,
// whose migrations make the hosts table, then the host's lease (lease.go).
func holdDatabase(ctx context.Context, cfg Config, d database) (dbLock, *store, error) {
	if d.pg != nil {
		st, err := openStore(ctx, d)
		if err != nil {
			return nil, nil, err
		}
		l, err := joinFleet(ctx, d, cfg, st.db)
		if err != nil {
			st.close()
			return nil, nil, err
		}
		l.setOnLost(st.dropIdle)
		return l, st, nil
	}
	if err := checkDBPath(d.path); err != nil { // before the lock file is made beside it
		return nil, nil, err
	}
	l, err := lockFile(d.path)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, d)
	if err != nil {
		l.release()
		return nil, nil, err
	}
	return l, st, nil
}

// fileLock holds a SQLite database: an exclusive flock(2) on a file beside
// it. The kernel releases a flock when its holder ends, however it ends, so a
// crash never leaves the database held.
type fileLock struct{ f *os.File }

// lockFile takes the lock of the database at dbPath, or fails with ErrLocked
// naming the holder's pid, having changed nothing.
func lockFile(dbPath string) (*fileLock, error) {
	path := dbPath + ".lock"
	// Opened close-on-exec (as Go opens every file): no job inherits the lock.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open database %s: lock file: %w", dbPath, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := lockHolder(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("open database %s: %w (%s holds %s)", dbPath, ErrLocked, holder, path)
		}
		return nil, fmt.Errorf("open database %s: lock %s: %w", dbPath, path, err)
	}
	// The holder's pid is for the error a second ProcMan reports; the lock
	// itself is the flock, so a stale pid left by a crash does no harm.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &fileLock{f: f}, nil
}

// lockHolder names the process that wrote its pid into the lock file.
func lockHolder(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:n]))); err == nil && pid > 0 {
		return "pid " + strconv.Itoa(pid)
	}
	return "a process that has not written its pid yet"
}

// held: a flock lasts as long as its file is open.
func (l *fileLock) held() error { return nil }

// release ends the hold. The file stays: removing it would let a third
// Manager lock a new file while a second still holds the old one.
func (l *fileLock) release() error { return l.f.Close() }
