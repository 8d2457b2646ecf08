package main

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"time"

	"github.com/Mk-Chan/procman"
)

// fleetOptions are the flags that name this host among the ProcMans sharing
// a PostgreSQL database.
type fleetOptions struct {
	host, advertise, caFile *string
	lease, grace            *time.Duration
}

func fleetFlags(fs *flag.FlagSet) fleetOptions {
	o := fleetOptions{
		host:      fs.String("host", "", "this ProcMan's `name` in the database: on its runs and, on PostgreSQL, in the fleet's hosts (default the machine's hostname)"),
		advertise: fs.String("advertise", "", "the `URL` at which the other hosts reach this one's API (default: from -addr when it is not loopback)"),
		lease:     fs.Duration("lease", procman.DefaultLease, "how long this host holds its name in the fleet (PostgreSQL) unrenewed; renewed every lease/5"),
		grace:     fs.Duration("grace", procman.DefaultGrace, "how long past a dead host's lease the fleet waits before taking over its work"),
		caFile: fs.String("ca-file", "", "trust the CA certificates in this PEM `file`, not the system's, for the https:// URLs that other "+
			"hosts advertise, where requests for their jobs are forwarded (default $PROCMAN_CA_FILE)"),
	}
	return o
}

func (f fleetOptions) apply(o *options) error {
	o.cfg.Host, o.cfg.Lease, o.cfg.Grace = *f.host, *f.lease, *f.grace
	o.cfg.Advertise = *f.advertise
	if o.cfg.Advertise == "" {
		o.cfg.Advertise = advertised(o.addr, o.tlsCert != "")
	}
	if u, err := url.Parse(o.cfg.Advertise); err == nil && u.Hostname() != "" {
		o.allowedHosts = append(o.allowedHosts, u.Hostname()) // the others send its requests to that name
	}
	caFile := cmp.Or(*f.caFile, os.Getenv("PROCMAN_CA_FILE"))
	if caFile == "" {
		return nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return fmt.Errorf("-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("-ca-file %s: no PEM certificate in it", caFile)
	}
	o.fleetTLS = &tls.Config{RootCAs: pool}
	return nil
}

// advertised is the URL of the API listening on addr, as another host would
// reach it: the address's host, or this machine's name for a wildcard; none
// for a loopback address (no other host reaches it) or the socket alone.
func advertised(addr string, tls bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return ""
	}
	if ip, err := netip.ParseAddr(host); host == "" || err == nil && ip.IsUnspecified() {
		if host, err = os.Hostname(); err != nil {
			return ""
		}
	} else if err == nil && ip.IsLoopback() || host == "localhost" {
		return ""
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}
