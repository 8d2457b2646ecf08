package procman

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
)

// PostgreSQL through pgx, the field's driver: bun's pgdialect over pgx's
// database/sql driver for the queries, and a pgx connection of its own for
// the lock (lock_pg.go), on which a later LISTEN can wait as well.

// pgConnectTimeout bounds a connection attempt when the connection string
// sets none: a server that does not answer must not hold Open, or a retry of
// the writer, for the minutes a TCP connect may take.
const pgConnectTimeout = 10 * time.Second

// database is where a Manager keeps its records, as Config names it.
type database struct {
	path   string          // SQLite: the file
	pg     *pgx.ConnConfig // PostgreSQL: the parsed connection string; nil for SQLite
	name   string          // for logs and errors: the path, or the server and database, without the password
	secret string          // the password, which scrub keeps out of every error
	hook   bun.QueryHook   // Config.queryHook
	host   string          // this machine (Config.host)
}

// isPostgresURL reports whether s names a PostgreSQL database rather than a
// SQLite file.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// database resolves the database the Config names.
func (c Config) database() (database, error) {
	if c.Postgres == "" {
		return database{path: c.DBPath, name: c.DBPath, host: c.Host}, nil
	}
	d := database{host: c.Host, secret: dsnPassword(c.Postgres), hook: c.queryHook}
	cfg, err := pgx.ParseConfig(c.Postgres)
	if err != nil { // pgx's message shows the string with its password masked
		return d, d.scrub(fmt.Errorf("config: Postgres: %w: %w", ErrInvalid, err))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	// bun writes each value into the statement's text, so there is nothing to
	// bind: the simple protocol takes one round trip, and no server-side
	// statement is prepared for a text that never comes again.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	if cfg.Password != "" {
		d.secret = cfg.Password
	}
	d.pg, d.name = cfg, fmt.Sprintf("postgres://%s@%s/%s", cfg.User, pgServer(cfg.Host, cfg.Port), cfg.Database)
	return d, nil
}

// pgServer names a server as a URL would: host:port, [v6]:port, or a
// socket's folder, escaped.
func pgServer(host string, port uint16) string {
	switch {
	case strings.HasPrefix(host, "/"):
		host = url.PathEscape(host)
	case strings.Contains(host, ":"):
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// dsnPassword finds the password a connection string carries, to keep it out
// of the error of a string pgx could not parse.
func dsnPassword(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && isPostgresURL(dsn) {
		if pw, ok := u.User.Password(); ok {
			return pw
		}
		return u.Query().Get("password")
	}
	for _, f := range strings.Fields(dsn) {
		if v, ok := strings.CutPrefix(f, "password="); ok {
			return strings.Trim(v, "'")
		}
	}
	return ""
}

// scrub keeps the password out of err's text, whatever a driver or server
// put in it; errors.Is and errors.As still see through it.
func (d database) scrub(err error) error {
	if err == nil || d.secret == "" || !strings.Contains(err.Error(), d.secret) {
		return err
	}
	return scrubbed{err: err, secret: d.secret}
}

type scrubbed struct {
	err    error
	secret string
}

func (s scrubbed) Error() string { return strings.ReplaceAll(s.err.Error(), s.secret, "xxxxx") }
func (s scrubbed) Unwrap() error { return s.err }

// openPGPool opens a handle of up to conns connections to the database.
// lock_timeout is PostgreSQL's busy timeout: how long a statement waits for
// a lock another session holds (a table locked by hand, say). Reads wait for
// no one otherwise. It is SET on each new connection rather than sent in
// the startup packet, which a pooler may refuse.
func openPGPool(cfg *pgx.ConnConfig, lockWait time.Duration, conns int) *bun.DB {
	c := cfg.Copy()
	if c.RuntimeParams == nil {
		c.RuntimeParams = map[string]string{}
	}
	if c.RuntimeParams["application_name"] == "" {
		c.RuntimeParams["application_name"] = "procman"
	}
	set := "SET lock_timeout = " + strconv.FormatInt(lockWait.Milliseconds(), 10)
	sqldb := stdlib.OpenDB(*c, stdlib.OptionAfterConnect(func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, set)
		return err
	}))
	sqldb.SetMaxOpenConns(conns)
	sqldb.SetMaxIdleConns(conns)
	return bun.NewDB(sqldb, pgdialect.New())
}

// openPostgres opens the store on a PostgreSQL database, bringing its schema
// up to date first.
func openPostgres(ctx context.Context, d database) (*store, error) {
	s := &store{pg: true, db: openPGPool(d.pg, poolBusy, poolConns)}
	if err := migratePostgres(ctx, s.db, postgresMigrations()); err != nil {
		s.db.Close()
		return nil, d.scrub(fmt.Errorf("open database %s: %w", d.name, err))
	}
	s.wdb = openPGPool(d.pg, writerBusy, 1)
	if d.hook != nil {
		s.db, s.wdb = s.db.WithQueryHook(d.hook), s.wdb.WithQueryHook(d.hook)
	}
	return s, nil
}

// dropIdle closes the idle connections of both handles, when the server has
// likely ended them all (lock_pg.go): the next statements get new ones,
// instead of each failing once on a connection the server closed.
func (s *store) dropIdle() {
	for _, h := range []struct {
		db   *bun.DB
		idle int
	}{{s.db, poolConns}, {s.wdb, 1}} {
		h.db.SetMaxIdleConns(0)
		h.db.SetMaxIdleConns(h.idle)
	}
}

// pgUniqueViolation is SQLSTATE unique_violation.
const pgUniqueViolation = "23505"

// isUniqueViolation reports whether err is a write refused for a key already
// taken.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == pgUniqueViolation
	}
	// Both SQLite drivers sqliteshim may pick report this text; matching it
	// keeps the store free of their error types.
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}
