package httpapi_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
	"github.com/Mk-Chan/procman/httpapi"
)

// openHost opens a Manager of host name on the PostgreSQL database dsn.
func openHost(t *testing.T, dsn, name string) *procman.Manager {
	t.Helper()
	dir := t.TempDir()
	m, err := procman.Open(context.Background(), procman.Config{Postgres: dsn, Host: name,
		Advertise: "http://" + name + ".example:10000", LogDir: filepath.Join(dir, "logs"),
		StopTimeout: stopTimeout, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open %s: %v", name, err)
	}
	t.Cleanup(func() { shutdown(t, m) })
	return m
}

func testLogger(t *testing.T) *slog.Logger { return slog.New(errorLogs{t}) }

func shutdown(t *testing.T, m *procman.Manager) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

// GET /hosts lists every host of the fleet, alive or not, as the client
// reads it too.
func TestHostsOfAFleet(t *testing.T) {
	dsn := pg.DB(t)
	a := openHost(t, dsn, "h1")
	b := openHost(t, dsn, "h2")
	ts := httptest.NewServer(httpapi.New(a))
	t.Cleanup(ts.Close)
	api, err := client.New(ts.URL, client.WithHTTPClient(ts.Client()))
	if err != nil {
		t.Fatal(err)
	}
	shutdown(t, b)

	resp, err := ts.Client().Get(ts.URL + "/hosts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /hosts: %d, %v", resp.StatusCode, err)
	}
	if len(raw) != 2 || raw[0]["name"] != "h1" || raw[0]["alive"] != true || raw[0]["this"] != true ||
		raw[0]["epoch"] != 1.0 || raw[0]["advertise"] != "http://h1.example:10000" || raw[0]["pid"] != float64(os.Getpid()) ||
		raw[1]["name"] != "h2" || raw[1]["alive"] != false || raw[1]["this"] != nil {
		t.Fatalf("GET /hosts: %v", raw)
	}
	for _, k := range []string{"version", "started_at", "heartbeat_at", "lease_until", "active_jobs"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("GET /hosts: no %q in %v", k, raw[0])
		}
	}
	hosts, err := api.Hosts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 2 || hosts[0].Name != "h1" || !hosts[0].Alive || hosts[1].Alive || hosts[1].Epoch != 1 {
		t.Fatalf("client.Hosts: %+v", hosts)
	}
	if got, _ := a.Hosts(context.Background()); !reflect.DeepEqual(got[1], hosts[1]) {
		t.Fatalf("h2 through the client: %+v, from the Manager: %+v", hosts[1], got[1])
	}
}

// On SQLite the one host is the one that answers.
func TestHostsOnSQLite(t *testing.T) {
	s := setup(t)
	hosts, err := s.api.Hosts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 || !hosts[0].Alive || !hosts[0].This || hosts[0].PID != os.Getpid() || hosts[0].Name == "" {
		t.Fatalf("hosts on SQLite: %+v", hosts)
	}
}
