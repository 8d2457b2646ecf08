package httpapi_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/Mk-Chan/procman"
)

// A scrape is gzipped when the scraper accepts it, and plain otherwise;
// either way it holds the per-job series.
func TestMetricsGzippedWhenAccepted(t *testing.T) {
	s := setup(t)
	s.create(t, procman.Job{Name: "web", Command: "sleep 1000", Type: procman.Continuous})
	for _, enc := range []string{"gzip", ""} {
		req, err := http.NewRequest(http.MethodGet, s.url+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept-Encoding", enc) // set, the client leaves the body as sent
		if enc == "" {
			req.Header.Set("Accept-Encoding", "identity")
		}
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if got := resp.Header.Get("Content-Encoding"); got != enc {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", enc, got)
		}
		var body io.Reader = resp.Body
		if enc == "gzip" {
			if body, err = gzip.NewReader(resp.Body); err != nil {
				t.Fatal(err)
			}
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `procman_job_state{job="web",state="stopped"} 1`) {
			t.Errorf("Accept-Encoding %q: no procman_job_state of web in\n%s", enc, b)
		}
	}
}
