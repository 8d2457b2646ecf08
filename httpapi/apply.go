package httpapi

import (
	"io"
	"mime"
	"net/http"
	"slices"

	"github.com/Mk-Chan/procman"
	"github.com/julienschmidt/httprouter"
)

// MaxDocumentBytes caps the body of POST /apply: a document of thousands of
// jobs, unlike one job, may pass MaxBodyBytes.
const MaxDocumentBytes = 8 << 20

// documentTypes are the media types POST /apply takes, with their format.
var documentTypes = map[string]procman.Format{
	"application/json":   procman.JSON,
	"application/yaml":   procman.YAML, // RFC 9512
	"application/x-yaml": procman.YAML,
	"text/yaml":          procman.YAML,
	"text/x-yaml":        procman.YAML,
}

// applyParams are the query parameters of POST /apply; any other is refused,
// so that a misspelt dry_run never applies a document.
var applyParams = []string{"dry_run", "prune", "restart", "source"}

// apply applies a document of jobs: POST /apply[?dry_run=1][&prune=1][&restart=1][&source=NAME].
// The library reads the document; this only hands it the body.
func (a *api) apply(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	format, ok := documentTypes[ct]
	if !ok {
		writeError(w, refuse(errMediaType, "a document of jobs is YAML (Content-Type: application/yaml) or JSON (application/json), not %q", ct))
		return
	}
	opts, err := applyOptions(r)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, MaxDocumentBytes))
	}
	var doc procman.Document
	if err == nil {
		doc, err = procman.ParseDocument(body, format)
	}
	var plan procman.Plan
	if err == nil {
		plan, err = a.m.Apply(r.Context(), doc, opts)
	}
	a.reply(w, http.StatusOK, plan, err)
}

func applyOptions(r *http.Request) (procman.ApplyOptions, error) {
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains(applyParams, k) {
			return procman.ApplyOptions{}, refuse(procman.ErrInvalid, "unknown parameter %q: POST /apply takes dry_run, prune, restart and source", k)
		}
	}
	var opts procman.ApplyOptions
	var err error
	for _, f := range []struct {
		key string
		v   *bool
	}{{"dry_run", &opts.DryRun}, {"prune", &opts.Prune}, {"restart", &opts.Restart}} {
		if *f.v, err = boolParam(r, f.key); err != nil {
			return opts, err
		}
	}
	opts.Source = q.Get("source")
	return opts, nil
}

// boolParam reads an optional query parameter that is 1 or true, 0 or false.
func boolParam(r *http.Request, key string) (bool, error) {
	switch s := r.URL.Query().Get(key); s {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	default:
		return false, refuse(procman.ErrInvalid, "%s must be 1 or 0 (true or false), got %q", key, s)
	}
}
