package main

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/Mk-Chan/procman/client"
)

// connect makes the client of the ProcMan that the flags and the environment
// name: -socket, -addr, $PROCMAN_SOCKET, $PROCMAN_ADDR, then the default.
func (c *cli) connect() error {
	if c.addr != "" && c.socket != "" {
		return usagef("give -addr or -socket, not both")
	}
	token, err := readToken(c.tokenFile)
	if err != nil {
		return err
	}
	opts := []client.Option{client.WithToken(token)}
	socket := c.socket
	if socket == "" && c.addr == "" {
		socket = os.Getenv("PROCMAN_SOCKET")
	}
	if socket != "" {
		c.api, err = client.NewUnix(socket, opts...)
		return err
	}
	addr := cmp.Or(c.addr, os.Getenv("PROCMAN_ADDR"))
	if c.caFile != "" && !isHTTPS(addr) {
		return usagef("-ca-file is for an https:// address, not %q", addr)
	}
	// $PROCMAN_CA_FILE is for the https:// addresses among those it is used with.
	if caFile := cmp.Or(c.caFile, os.Getenv("PROCMAN_CA_FILE")); caFile != "" && isHTTPS(addr) {
		opts = append(opts, client.WithCAFile(caFile))
	}
	c.api, err = client.New(addr, opts...)
	if errors.Is(err, client.ErrAddress) {
		return usageError{err.Error()}
	}
	return err
}

func isHTTPS(addr string) bool {
	scheme, _, ok := strings.Cut(addr, "://")
	return ok && strings.EqualFold(scheme, "https")
}

// errInterrupted is a request cut short by SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted (ProcMan carries on with a change it has accepted)")

// failed explains the failure of a request to ProcMan: its error answer as
// it is (with a hint when the token is missing), or why it was not reached.
func (c *cli) failed(err error) error {
	var answer *client.Error
	switch {
	case errors.As(err, &answer):
		if answer.Status == http.StatusUnauthorized {
			return fmt.Errorf("%w; set PROCMAN_TOKEN or -token-file to ProcMan's token", err)
		}
		return err
	case c.ctx.Err() != nil:
		return errInterrupted
	}
	return c.connError(err)
}

// connError explains a failure to talk to ProcMan, naming its address.
func (c *cli) connError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	where := c.api.Addr()
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach ProcMan at %s: connection refused (is it running there? see -addr, -socket)", where)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("cannot reach ProcMan at %s: no such socket (is it running there? see -addr, -socket)", where)
	case errors.As(err, new(x509.UnknownAuthorityError)), errors.As(err, new(x509.HostnameError)):
		return fmt.Errorf("talking to ProcMan at %s: %w (give the CA of its certificate with -ca-file or $PROCMAN_CA_FILE)", where, err)
	}
	return fmt.Errorf("talking to ProcMan at %s: %w", where, err)
}

// printJSON prints an answer of ProcMan as JSON (-o json), encoded as ProcMan
// encodes it, but for the characters a terminal would act on, escaped as
// JSON allows (jsonSafe).
func (c *cli) printJSON(v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := c.stdout.Write(jsonSafe(b.Bytes()))
	return err
}
