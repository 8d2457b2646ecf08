package procman

import (
	"errors"
	"strings"
	"testing"
)

// A connection string's password appears in no error: not when pgx cannot
// parse the string, not when the server cannot be reached.
func TestPostgresPasswordInNoError(t *testing.T) {
	const pw = "Sup3r-s3cret-pw"
	for _, tc := range []struct {
		dsn     string
		invalid bool
	}{
		{"postgres://procman:" + pw + "@127.0.0.1:99999/procman", true}, // no such port
		{"postgres://procman:" + pw + "@127.0.0.1:1/procman?connect_timeout=2", false},
		{"host=127.0.0.1 port=1 user=procman password=" + pw + " dbname=procman connect_timeout=2", false},
		{"postgres://procman@127.0.0.1:1/procman?password=" + pw + "&connect_timeout=2", false},
	} {
		_, err := Open(ctxT(t), Config{Postgres: tc.dsn, LogDir: t.TempDir()})
		if err == nil || strings.Contains(err.Error(), pw) || errors.Is(err, ErrInvalid) != tc.invalid {
			t.Errorf("Open(%s): %v, want an error without the password (ErrInvalid: %v)", strings.ReplaceAll(tc.dsn, pw, "PW"), err, tc.invalid)
		}
		t.Log(err)
	}
}
