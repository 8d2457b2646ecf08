package pgtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"
)

var pg Lazy

func TestMain(m *testing.M) {
	code := m.Run()
	pg.Stop()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

func query(t *testing.T, dsn string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT 40 + 2").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDatabasesAreSeparateAndSurviveARestart(t *testing.T) {
	a, b := pg.DB(t), pg.DB(t)
	if a == b {
		t.Fatalf("two tests got the same database %s", a)
	}
	if n := query(t, a); n != 42 {
		t.Fatalf("got %d", n)
	}
	if err := pg.Server(t).Restart(); err != nil {
		t.Fatal(err)
	}
	if n := query(t, b); n != 42 {
		t.Fatalf("after restart: got %d", n)
	}
}

// StartWith sizes max_connections and preloads libraries: pg_stat_statements
// counts the statements run on another database, and keeps doing so after a
// restart.
func TestStartWithOptions(t *testing.T) {
	if _, err := Find(); err != nil {
		pg.Server(t) // skips, or fails when PostgreSQL is required
	}
	srv, err := StartWith(Options{MaxConnections: 321, Preload: []string{"pg_stat_statements"}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Remove()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := srv.CreateDB(ctx, "counted")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var conns string
	if err := conn.QueryRow(ctx, "SHOW max_connections").Scan(&conns); err != nil || conns != "321" {
		t.Fatalf("max_connections: %q, %v; want 321", conns, err)
	}
	if _, err := conn.Exec(ctx, "CREATE EXTENSION pg_stat_statements"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		query(t, dsn)
	}
	var calls int64
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(calls), 0)::int8 FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = 'counted' AND s.query LIKE 'SELECT $1 + $2%'`).Scan(&calls)
	if err != nil || calls != 3 {
		t.Fatalf("statements counted on the other database: %d, %v; want 3", calls, err)
	}
}
