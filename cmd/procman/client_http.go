package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"
)

// defaultAddr is where the client looks for ProcMan when told nothing.
const defaultAddr = "127.0.0.1:10000"

// cli is one run of a client command.
type cli struct {
	ctx            context.Context
	cmd            *command
	fs             *flag.FlagSet
	stdout, stderr io.Writer

	// flags every command takes
	addr, socket, tokenFile, caFile, output string

	json, color bool
	http        *http.Client
	base        string // "http://host:port", no trailing slash
	where       string // ProcMan's address, for error messages
	token       string
}

// connect works out where ProcMan is from the flags and the environment:
// -socket, -addr, $PROCMAN_SOCKET, $PROCMAN_ADDR, then the default.
func (c *cli) connect() error {
	if c.addr != "" && c.socket != "" {
		return usagef("give -addr or -socket, not both")
	}
	token, err := readToken(c.tokenFile)
	if err != nil {
		return err
	}
	c.token = token
	socket := c.socket
	if socket == "" && c.addr == "" {
		socket = os.Getenv("PROCMAN_SOCKET")
	}
	if socket != "" {
		c.dialUnix(socket)
		return nil
	}
	addr := c.addr
	if addr == "" {
		addr = os.Getenv("PROCMAN_ADDR")
	}
	return c.dialTCP(addr, c.caFile)
}

func (c *cli) dialUnix(path string) {
	var d net.Dialer
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
	}}
	c.base, c.where = "http://procman", "unix socket "+path
}

// dialTCP accepts "host:port", a bare port (on 127.0.0.1) or a URL; an
// https:// one is verified against the certificates of caFile (-ca-file, else
// $PROCMAN_CA_FILE), or the system's when there is none.
func (c *cli) dialTCP(addr, caFile string) error {
	switch {
	case addr == "":
		addr = defaultAddr
	case isDigits(addr):
		addr = "127.0.0.1:" + addr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("bad address %q: want host:port or http(s)://host:port", addr)
	}
	if caFile != "" && u.Scheme != "https" {
		return usagef("-ca-file is for an https:// address, not %q", addr)
	}
	if caFile == "" {
		caFile = os.Getenv("PROCMAN_CA_FILE")
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 10 * time.Second}
	if u.Scheme == "https" && caFile != "" {
		pool, err := readCAFile(caFile)
		if err != nil {
			return err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	c.http = &http.Client{Transport: tr}
	c.base, c.where = u.Scheme+"://"+u.Host+strings.TrimSuffix(u.Path, "/"), u.Host
	return nil
}

// readCAFile reads the PEM certificates a client trusts instead of the system's.
func readCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// apiError is an error answer of ProcMan: {"error": "..."} with its status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%s (HTTP %d)", e.msg, e.status)
	if e.status == http.StatusUnauthorized {
		s += "; set PROCMAN_TOKEN or -token-file to ProcMan's token"
	}
	return s
}

// send makes a request to ProcMan, with body (if not nil) as JSON, and returns
// the response to a successful one; the caller closes its body.
func (c *cli) send(method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if method == http.MethodPatch {
			req.Header.Set("Content-Type", "application/merge-patch+json")
		}
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.connError(err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readAPIError(resp)
	}
	return resp, nil
}

// call makes a request and returns the whole answer.
func (c *cli) call(method, path string, body any) ([]byte, error) {
	resp, err := c.send(method, path, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, c.connError(err)
	}
	return b, nil
}

// get fetches path and decodes the answer into out; raw is the answer as sent.
func (c *cli) get(path string, out any) (raw []byte, err error) {
	raw, err = c.call(http.MethodGet, path, nil)
	if err == nil && out != nil {
		if err = json.Unmarshal(raw, out); err != nil {
			err = fmt.Errorf("unexpected answer from %s: %w", c.where, err)
		}
	}
	return raw, err
}

func readAPIError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	} else if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &apiError{status: resp.StatusCode, msg: msg}
}

// errInterrupted is a request cut short by SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted (ProcMan carries on with a change it has accepted)")

// connError explains a failure to talk to ProcMan, naming its address.
func (c *cli) connError(err error) error {
	if c.ctx.Err() != nil {
		return errInterrupted
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach ProcMan at %s: connection refused (is it running there? see -addr, -socket)", c.where)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("cannot reach ProcMan at %s: no such socket (is it running there? see -addr, -socket)", c.where)
	case errors.As(err, new(x509.UnknownAuthorityError)), errors.As(err, new(x509.HostnameError)):
		return fmt.Errorf("talking to ProcMan at %s: %w (give the CA of its certificate with -ca-file or $PROCMAN_CA_FILE)", c.where, err)
	}
	return fmt.Errorf("talking to ProcMan at %s: %w", c.where, err)
}

// raw prints an answer as ProcMan sent it (-o json), but for the characters
// a terminal would act on, escaped as JSON allows (jsonSafe).
func (c *cli) raw(b []byte) error {
	_, err := c.stdout.Write(jsonSafe(b))
	return err
}

// jobPath is /job/NAME plus suffix.
func jobPath(name, suffix string) string { return "/job/" + pathName(name) + suffix }

// pathName is a job's name as a path segment: a name with "/" in it must not
// reach another route.
func pathName(name string) string { return url.PathEscape(name) }
