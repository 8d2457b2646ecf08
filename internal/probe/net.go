//go:build linux

package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// NewHTTPClient returns the client for HTTP probes: no proxy (a probe asks the
// service itself), no redirect followed (a 3xx is an answer), and no
// connection kept between probes (nor the goroutines that would keep it).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DialContext:       (&net.Dialer{}).DialContext,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// HTTP sends a GET to url with c, and passes on any 2xx or 3xx status. The
// body is not read.
func HTTP(ctx context.Context, c *http.Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "procman-health-check")
	resp, err := c.Do(req)
	if err != nil {
		return netError(ctx, err, timeout)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// TCP passes when a TCP connection to addr (host:port) opens; it is closed at once.
func TCP(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return netError(ctx, err, timeout)
	}
	conn.Close()
	return nil
}

// netError says "timed out after 5s" rather than "context deadline exceeded".
func netError(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("timed out after %s", timeout)
	}
	return err
}
