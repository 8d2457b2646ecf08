// Package pgtest runs a throwaway PostgreSQL server for tests: initdb and
// pg_ctl in a temporary folder, listening on a loopback port, with nothing
// kept once it stops. It needs Debian's postgresql package (or any
// PostgreSQL whose initdb and pg_ctl are on PATH or under
// /usr/lib/postgresql/*/bin); no Docker, no running service.
//
// A test package keeps one server for all its tests (starting one takes a
// second or two) and gives each test an empty database of its own:
//
//	var pg pgtest.Lazy // in the package's tests
//
//	func TestMain(m *testing.M) { code := m.Run(); pg.Stop(); os.Exit(code) }
//
//	func TestX(t *testing.T) { dsn := pg.DB(t); ... }
//
// When the binaries are missing, DB skips the test saying so, unless
// PROCMAN_TEST_POSTGRES=require is set (as CI does), which makes it fail.
//
// A program that measures (bench/fleet) starts its own with StartWith, which
// can size max_connections and preload pg_stat_statements, and removes it
// with Remove.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// RequireVar, set to "require", turns a missing PostgreSQL into a failure.
const RequireVar = "PROCMAN_TEST_POSTGRES"

// ErrNoPostgres is returned when initdb or pg_ctl cannot be found.
var ErrNoPostgres = errors.New("PostgreSQL's initdb and pg_ctl are not on this machine (Debian: apt-get install postgresql)")

// Server is one PostgreSQL server in a temporary folder.
type Server struct {
	bin  string // folder of initdb, pg_ctl and postgres
	dir  string // the server's folder: data/, the socket, server.log
	port int
	cred *syscall.Credential // whom the server runs as: PostgreSQL refuses root
	opts Options
}

// Options shape a server for what a program measures; the zero value is a
// test's server.
type Options struct {
	// MaxConnections is max_connections; 0: 200, enough for a package's
	// tests. A fleet of simulated hosts holds several connections each.
	MaxConnections int
	// Preload is shared_preload_libraries: "pg_stat_statements", which counts
	// every statement the server runs, must be loaded at start.
	Preload []string
}

// Find returns the folder holding initdb and pg_ctl.
func Find() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) }) // newest first
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// Start creates a database cluster in a new temporary folder and starts a
// server on a free loopback port. The caller stops it with Stop.
func Start() (*Server, error) { return StartWith(Options{}) }

// StartWith is Start with the server shaped by o.
func StartWith(o Options) (*Server, error) {
	bin, err := Find()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir, opts: o}
	if err := s.init(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for try := 0; ; try++ {
		if s.port, err = freePort(); err == nil {
			if err = s.Start(); err == nil {
				return s, nil
			}
		}
		if try == 3 { // another process took the port each time, or the server cannot start
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// init runs initdb as the user the server will run as.
func (s *Server) init() error {
	if os.Geteuid() == 0 {
		cred, err := serverUser()
		if err != nil {
			return err
		}
		s.cred = cred
		if err := os.Chown(s.dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return err
		}
	}
	// trust: only this machine's loopback and the folder's socket reach it.
	out, err := s.command("initdb", "-D", s.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// serverUser is whom a root test process runs PostgreSQL as.
func serverUser() (*syscall.Credential, error) {
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("pgtest: running as root, and there is no postgres or nobody user to run PostgreSQL as")
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=" + s.bin + ":/usr/bin:/bin", "LC_ALL=C"}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// Start starts the server (again, after Stop) and waits until it accepts connections.
func (s *Server) Start() error {
	conns := s.opts.MaxConnections
	if conns == 0 {
		conns = 200
	}
	args := []string{
		"-p", strconv.Itoa(s.port), "-k", s.dir, "-c", "listen_addresses=127.0.0.1",
		// A test server needs no durability, only speed.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=" + strconv.Itoa(conns),
	}
	if len(s.opts.Preload) > 0 {
		args = append(args, "-c", "shared_preload_libraries="+strings.Join(s.opts.Preload, ","))
	}
	opts := strings.Join(args, " ")
	out, err := s.command("pg_ctl", "-D", s.data(), "-l", filepath.Join(s.dir, "server.log"),
		"-o", opts, "-w", "-t", "60", "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, tail(log, 2000))
	}
	return nil
}

// Stop stops the server at once (pg_ctl -m fast): open connections are ended.
func (s *Server) Stop() error {
	out, err := s.command("pg_ctl", "-D", s.data(), "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Restart stops and starts the server on the same port; clients see their
// connections end, as when a production database restarts.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.Start()
}

// Remove stops the server and deletes its folder.
func (s *Server) Remove() error {
	err := s.Stop()
	return errors.Join(err, os.RemoveAll(s.dir))
}

// Port is the loopback port the server listens on.
func (s *Server) Port() int { return s.port }

// DSN is the connection string of database db.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// CreateDB creates an empty database and returns its DSN.
func (s *Server) CreateDB(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// Lazy is a server started on first use and shared by every test of a
// package; the zero value is ready to use.
type Lazy struct {
	once sync.Once
	srv  *Server
	err  error
	mu   sync.Mutex
	n    int // databases created, for their names
}

// Server returns the shared server, starting it the first time; it skips
// (or, with PROCMAN_TEST_POSTGRES=require, fails) t when PostgreSQL is missing.
func (l *Lazy) Server(t testing.TB) *Server {
	t.Helper()
	l.once.Do(func() { l.srv, l.err = Start() })
	switch {
	case errors.Is(l.err, ErrNoPostgres) && os.Getenv(RequireVar) != "require":
		t.Skipf("%v; this test needs it (%s=require makes this a failure)", l.err, RequireVar)
	case l.err != nil:
		t.Fatalf("pgtest: %v", l.err)
	}
	return l.srv
}

// DB returns the DSN of a new, empty database for t on the shared server.
func (l *Lazy) DB(t testing.TB) string {
	t.Helper()
	srv := l.Server(t)
	l.mu.Lock()
	l.n++
	name := "t" + strconv.Itoa(l.n)
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := srv.CreateDB(ctx, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// Stop stops and removes the shared server, if it was started.
func (l *Lazy) Stop() {
	if l.srv != nil {
		l.srv.Remove()
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
