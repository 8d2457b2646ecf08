package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// DefaultAddr is where ProcMan listens when told nothing, and so where New
// looks for it when given no address.
const DefaultAddr = "127.0.0.1:10000"

// ErrAddress is wrapped by New's error for an address it cannot read.
var ErrAddress = errors.New("bad address")

// Client talks to one ProcMan. It is safe for concurrent use.
type Client struct {
	hc    *http.Client
	base  string // scheme://host[/path], without a trailing slash
	addr  string // for messages: host:port, or "unix socket PATH"
	token string
}

// Option configures a Client.
type Option func(*options)

type options struct {
	token, caFile string
	hc            *http.Client
}

// WithToken sends token as "Authorization: Bearer <token>" with every request.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithCAFile trusts the CA certificates in this PEM file, and no others, for
// an https:// address: a ProcMan whose certificate no CA of the system signed.
func WithCAFile(path string) Option { return func(o *options) { o.caFile = path } }

// WithHTTPClient sends requests with hc (its transport, its timeout) instead
// of a client of New's making. It cannot be given with WithCAFile (hc's
// transport then says whom to trust), nor to NewUnix (whose transport dials
// the socket).
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// New returns a client of the ProcMan at addr: "host:port", a port (on
// 127.0.0.1), or an http:// or https:// URL (whose path, if any, prefixes
// every route: a ProcMan behind a proxy). An empty addr is DefaultAddr.
func New(addr string, opts ...Option) (*Client, error) {
	o := collect(opts)
	switch {
	case addr == "":
		addr = DefaultAddr
	case isDigits(addr):
		addr = "127.0.0.1:" + addr
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w %q: want host:port or http(s)://host:port", ErrAddress, addr)
	}
	if o.caFile != "" && u.Scheme != "https" {
		return nil, fmt.Errorf("a CA file is for an https:// address, not %q", addr)
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	hc, err := o.client(&http.Transport{DialContext: d.DialContext, TLSHandshakeTimeout: 10 * time.Second})
	if err != nil {
		return nil, err
	}
	return &Client{hc: hc, base: u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/"), addr: u.Host, token: o.token}, nil
}

// NewUnix returns a client of the ProcMan serving its API on the Unix socket
// at path (procman -socket PATH).
func NewUnix(path string, opts ...Option) (*Client, error) {
	o := collect(opts)
	switch {
	case o.caFile != "":
		return nil, errors.New("a CA file is for an https:// address, not a Unix socket")
	case o.hc != nil:
		return nil, errors.New("a Unix socket's client makes its own http.Client")
	}
	var d net.Dialer
	hc, err := o.client(&http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", path)
	}})
	if err != nil {
		return nil, err
	}
	return &Client{hc: hc, base: "http://procman", addr: "unix socket " + path, token: o.token}, nil
}

func collect(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// client is the http.Client to use: the one given, or one with tr.
func (o options) client(tr *http.Transport) (*http.Client, error) {
	if o.hc != nil {
		if o.caFile != "" {
			return nil, errors.New("give a CA file or an http.Client, not both")
		}
		return o.hc, nil
	}
	if o.caFile != "" {
		pool, err := readCAFile(o.caFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr}, nil
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

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// Addr is where the client reaches ProcMan, for messages: "host:port", or
// "unix socket PATH".
func (c *Client) Addr() string { return c.addr }

// CloseIdleConnections closes the connections kept for later requests, as
// http.Client's method of that name does.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// request is one call of the API. A body is JSON (or a JSON merge patch)
// given as bytes, or a value to encode.
type request struct {
	method, path string
	query        url.Values
	body         any
	patch        bool   // the body is a JSON merge patch
	contentType  string // of the body, if neither JSON nor a merge patch
}

// send makes a request and returns the answer to a successful one; the
// caller closes its body. An error answer is an *Error.
func (c *Client) send(ctx context.Context, rq request) (*http.Response, error) {
	var body io.Reader
	switch b := rq.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(raw)
	}
	target := c.base + rq.path
	if len(rq.query) > 0 {
		target += "?" + rq.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, target, body)
	if err != nil {
		return nil, err
	}
	switch {
	case rq.contentType != "":
		req.Header.Set("Content-Type", rq.contentType)
	case rq.patch:
		req.Header.Set("Content-Type", "application/merge-patch+json")
	case body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ProcMan at %s: %w", c.addr, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// call makes a request and decodes its answer into out (nil: none wanted).
func (c *Client) call(ctx context.Context, rq request, out any) error {
	resp, err := c.send(ctx, rq)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	} else {
		err = json.NewDecoder(resp.Body).Decode(out)
	}
	if err != nil {
		return fmt.Errorf("%s %s: reading ProcMan's answer: %w", rq.method, rq.path, err)
	}
	return nil
}

// jobPath is /job/NAME plus suffix.
func jobPath(name, suffix string) string { return "/job/" + pathSegment(name) + suffix }

// pathSegment is a job's name as one path segment: a name with a '/' in it
// cannot reach another route (ProcMan refuses it).
func pathSegment(name string) string { return url.PathEscape(name) }
