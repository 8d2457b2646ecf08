package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/Mk-Chan/procman/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

// server is the PostgreSQL server the fleets share, one database per round.
//
// Statements are counted by pg_stat_statements where the server has it
// loaded: it counts every statement the server runs, whatever the protocol
// (BEGIN, COMMIT and SET included, as their own statements), by database,
// at the moment each ends. The bench reads it from the maintenance
// database, so its own statements are never counted on a fleet's.
// Autovacuum runs no statements, and is not counted either.
//
// Transactions are counted by pg_stat_database (xact_commit + xact_rollback
// of the fleet's database) in any case: each statement outside a
// transaction is one. It is the cross-check, and the only count on a server
// without pg_stat_statements. Each session reports it at most once a
// second, so a window's edges blur by about that much, and autovacuum's
// transactions count too.
type server struct {
	admin      *pgx.Conn // on the maintenance database
	base       *url.URL  // the admin DSN: a round's database is its path changed
	target     string    // host:port, where the links lead
	statements bool      // pg_stat_statements can be read
	remove     func()    // stops a server started here
}

// openServer starts a throwaway server sized for maxHosts, or connects to
// dsn's when it is set.
func openServer(ctx context.Context, dsn string, maxHosts int) (*server, error) {
	s := &server{remove: func() {}}
	if dsn == "" {
		// A host holds its heartbeat's connection, up to 4 of its pool and
		// the writer's.
		srv, err := pgtest.StartWith(pgtest.Options{MaxConnections: 8*maxHosts + 50, Preload: []string{"pg_stat_statements"}})
		if err != nil {
			return nil, err
		}
		s.remove = func() { srv.Remove() }
		dsn = srv.DSN("postgres")
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Port() == "" {
		s.remove()
		return nil, errors.New("-db wants a URL with a TCP host and port: postgres://user@host:port/db")
	}
	s.base, s.target = u, u.Host
	if s.admin, err = pgx.Connect(ctx, dsn); err != nil {
		s.remove()
		return nil, err
	}
	s.admin.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements") // fails where it is not installed
	_, err = s.admin.Exec(ctx, "SELECT 1 FROM pg_stat_statements LIMIT 1")
	s.statements = err == nil
	return s, nil
}

func (s *server) close(ctx context.Context) {
	s.admin.Close(ctx)
	s.remove()
}

// createDB creates an empty database for a round.
func (s *server) createDB(ctx context.Context, name string) error {
	s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	_, err := s.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return err
}

func (s *server) dropDB(ctx context.Context, name string) error {
	_, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

// dsnVia is the DSN of database db reached through the link at addr.
func (s *server) dsnVia(addr, db string) string {
	u := *s.base
	u.Host, u.Path = addr, "/"+db
	return u.String()
}

// counts is what the server has counted on one database.
type counts struct {
	xacts      int64
	statements map[string]int64 // calls by normalised text; nil without pg_stat_statements
	conns      int              // sessions open on it
}

func (s *server) count(ctx context.Context, db string) (counts, error) {
	var c counts
	err := s.admin.QueryRow(ctx, `SELECT xact_commit + xact_rollback, (SELECT count(*) FROM pg_stat_activity WHERE datname = $1)
		FROM pg_stat_database WHERE datname = $1`, db).Scan(&c.xacts, &c.conns)
	if err != nil || !s.statements {
		return c, err
	}
	rows, err := s.admin.Query(ctx, `SELECT s.query, sum(s.calls)::int8 FROM pg_stat_statements s
		JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 GROUP BY s.query`, db)
	if err != nil {
		return c, err
	}
	c.statements = map[string]int64{}
	for rows.Next() {
		var q string
		var n int64
		if err := rows.Scan(&q, &n); err != nil {
			return c, err
		}
		c.statements[q] = n
	}
	return c, rows.Err()
}

// since is what was counted between earlier and c.
func (c counts) since(earlier counts) counts {
	d := counts{xacts: c.xacts - earlier.xacts, conns: c.conns}
	if c.statements != nil {
		d.statements = map[string]int64{}
		for q, n := range c.statements {
			if n -= earlier.statements[q]; n > 0 {
				d.statements[q] = n
			}
		}
	}
	return d
}

func (c counts) totalStatements() int64 {
	var n int64
	for _, v := range c.statements {
		n += v
	}
	return n
}

func (s *server) String() string {
	how := "pg_stat_database only (no pg_stat_statements)"
	if s.statements {
		how = "pg_stat_statements and pg_stat_database"
	}
	return fmt.Sprintf("PostgreSQL at %s, counted by %s", s.target, how)
}
