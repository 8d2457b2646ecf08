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
