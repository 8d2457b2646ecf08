package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/httpapi"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The OpenAPI document (openapi.yaml) cannot drift from the API: setup
// serves every request of these tests through validated, which holds the
// request and the answer to the document, and the tests below hold the
// document's routes to the API's and its schemas to the Go types.

var (
	specOnce sync.Once
	spec     *openapi3.T
	specErr  error
)

// openAPI is the document, loaded and validated once.
func openAPI(t *testing.T) *openapi3.T {
	t.Helper()
	specOnce.Do(func() {
		loader := openapi3.NewLoader()
		spec, specErr = loader.LoadFromData(httpapi.OpenAPI)
		if specErr == nil {
			specErr = spec.Validate(loader.Context)
		}
	})
	if specErr != nil {
		t.Fatalf("openapi.yaml: %v", specErr)
	}
	return spec
}

// findRoute finds the documented operation of a request, as the API's own
// router does: a path may match several templates (/job/create is also the
// job "create"), and the first, concrete ones first, with the method wins.
// pathOnly reports that some template matched the path, for another method.
func findRoute(doc *openapi3.T, r *http.Request) (route *routers.Route, params map[string]string, pathOnly bool) {
	for _, tmpl := range doc.Paths.InMatchingOrder() {
		params, ok := matchTemplate(tmpl, r.URL.Path)
		if !ok {
			continue
		}
		item := doc.Paths.Value(tmpl)
		if op := item.GetOperation(r.Method); op != nil {
			return &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: r.Method, Operation: op}, params, false
		}
		pathOnly = true
	}
	return nil, nil, pathOnly
}

func matchTemplate(tmpl, path string) (map[string]string, bool) {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return nil, false
	}
	params := map[string]string{}
	for i, s := range ts {
		switch {
		case strings.HasPrefix(s, "{"):
			if ps[i] == "" {
				return nil, false
			}
			params[s[1:len(s)-1]] = ps[i]
		case s != ps[i]:
			return nil, false
		}
	}
	return params, true
}

// streaming reports whether an answer streams (events, a log followed):
// its body is not held back, and is checked by hand.
func streaming(r *http.Request) bool {
	f := r.URL.Query().Get("follow")
	return r.Method == http.MethodGet && (r.URL.Path == "/events" || strings.HasSuffix(r.URL.Path, "/logs") && (f == "1" || f == "true"))
}

// validateRequest checks a request against its operation. A body sent
// without one of the types the operation documents is read as the first of
// them, as the API reads a job whatever its Content-Type (curl -d sends
// application/x-www-form-urlencoded): the routes that care answer 415.
func validateRequest(in *openapi3filter.RequestValidationInput, body []byte) error {
	r := in.Request
	err := openapi3filter.ValidateRequest(context.Background(), in)
	rb := in.Route.Operation.RequestBody
	if err == nil || rb == nil || rb.Value.Content.Get(r.Header.Get("Content-Type")) != nil {
		return err
	}
	types := slices.Sorted(maps.Keys(rb.Value.Content))
	retry := r.Clone(r.Context())
	retry.Header.Set("Content-Type", types[0])
	retry.Body = io.NopCloser(bytes.NewReader(body))
	again := *in
	again.Request = retry
	return openapi3filter.ValidateRequest(context.Background(), &again)
}

// validated is h with every request and answer checked against the OpenAPI
// document, strictly: a request the document refuses must be refused (4xx);
// every answer's status must be documented for its operation, and its
// headers and body must match (streams: their status and type); a request
// to no documented route must get no_route, method_not_allowed, or the
// refusals every route may give (401, 403).
func validated(t *testing.T, h http.Handler) http.Handler {
	doc := openAPI(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		route, params, pathOnly := findRoute(doc, r)
		what := r.Method + " " + r.URL.String()
		var reqErr error
		var opts *openapi3filter.Options
		if route != nil {
			opts = &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true,
				AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}
			in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
			reqErr = validateRequest(in, body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rec := &recorder{w: w, header: http.Header{}, stream: streaming(r)}
		h.ServeHTTP(rec, r)
		rec.finish()
		status := rec.status
		switch {
		case route == nil:
			code := errorCodeIn(rec.body.Bytes())
			if !(status == 404 && code == "no_route" || status == 405 && code == "method_not_allowed" && pathOnly ||
				status == 401 || status == 403) {
				t.Errorf("openapi: %s is no documented route, but was answered %d %q", what, status, code)
			}
			return
		case reqErr != nil && status < 400:
			t.Errorf("openapi: %s: the document refuses the request (%v), the API answered %d", what, reqErr, status)
		}
		if rec.stream && status == http.StatusOK {
			if ct := rec.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") && !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("openapi: %s: stream of type %q", what, ct)
			}
			return
		}
		in := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts},
			Status:                 status, Header: rec.header, Options: opts,
		}
		in.SetBodyBytes(rec.body.Bytes())
		if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
			t.Errorf("openapi: %s: answer %d %.300s does not match the document: %v", what, status, rec.body.Bytes(), err)
		}
	})
}

func errorCodeIn(body []byte) string {
	var e struct{ Code string }
	json.Unmarshal(body, &e)
	return e.Code
}

// recorder passes an answer on and keeps a copy: all of it, which it then
// sends, or, for a stream, what it writes through at once (up to 64 KiB).
type recorder struct {
	w      http.ResponseWriter
	header http.Header
	status int
	body   bytes.Buffer
	stream bool
	sent   bool
}

func (rc *recorder) Header() http.Header {
	if rc.stream {
		return rc.w.Header()
	}
	return rc.header
}

func (rc *recorder) WriteHeader(code int) {
	if rc.status != 0 {
		return
	}
	rc.status = code
	if rc.stream {
		rc.header = rc.w.Header().Clone()
		rc.w.WriteHeader(code)
	}
}

func (rc *recorder) Write(b []byte) (int, error) {
	if rc.status == 0 {
		rc.WriteHeader(http.StatusOK)
	}
	if !rc.stream {
		return rc.body.Write(b)
	}
	if rc.body.Len() < 64<<10 {
		rc.body.Write(b)
	}
	return rc.w.Write(b)
}

// Flush sends a stream on at once; a held answer goes at the end anyway.
func (rc *recorder) Flush() {
	if f, ok := rc.w.(http.Flusher); ok && rc.stream {
		f.Flush()
	}
}

// Unwrap lets a stream's handler set its write deadline on the connection.
func (rc *recorder) Unwrap() http.ResponseWriter {
	if rc.stream {
		return rc.w
	}
	return nil
}

func (rc *recorder) finish() {
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	if rc.stream || rc.sent {
		return
	}
	rc.sent = true
	for k, v := range rc.header {
		rc.w.Header()[k] = v
	}
	rc.w.WriteHeader(rc.status)
	rc.w.Write(rc.body.Bytes())
}

// TestOpenAPIDocumentsEveryRoute: every route of the API (the table that is
// the router's only source) is documented, with its methods, and every
// documented operation is one the API answers: none of them is answered
// no_route or 405.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	s := setup(t)
	doc := openAPI(t)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	var routed []string
	for _, rt := range httpapi.Routes(s.m) {
		routed = append(routed, rt[0]+" "+rt[1])
	}
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("openapi.yaml documents %s, which is no route", d)
		}
	}
	fill := strings.NewReplacer("{name}", "nope", "{id}", "1", "{file}", "app.js")
	for _, d := range documented {
		method, path, _ := strings.Cut(d, " ")
		req, _ := http.NewRequest(method, s.url+fill.Replace(path), nil)
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		var body []byte
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") { // a stream would go on
			body, _ = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusNotFound && errorCodeIn(body) == "no_route" {
			t.Errorf("%s %s (documented as %s): %d %s", method, fill.Replace(path), d, resp.StatusCode, body)
		}
	}
}

// jsonFields are the JSON names of a struct's fields, embedded ones included.
func jsonFields(t reflect.Type) []string {
	var out []string
	for _, f := range reflect.VisibleFields(t) {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" && !f.Anonymous {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// schemaFields are the properties of a schema, those of its allOf included.
func schemaFields(s *openapi3.Schema) []string {
	var out []string
	for k := range s.Properties {
		out = append(out, k)
	}
	for _, sub := range s.AllOf {
		out = append(out, schemaFields(sub.Value)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestOpenAPISchemasMatchTheTypes: each schema has exactly the fields of
// the Go type the API encodes (a field added to procman.Job must be
// documented), and each enum exactly the values of its vocabulary.
func TestOpenAPISchemasMatchTheTypes(t *testing.T) {
	schemas := openAPI(t).Components.Schemas
	for name, typ := range map[string]any{
		"JobFields": procman.Job{}, "Job": procman.Job{}, "JobInput": procman.Job{}, "Entry": procman.Entry{},
		"Status": procman.Status{}, "LastRun": procman.LastRun{}, "Run": procman.Run{}, "Event": procman.Event{},
		"Plan": procman.Plan{}, "JobChange": procman.JobChange{}, "FieldChange": procman.FieldChange{},
		"FieldError": procman.FieldError{}, "Error": struct {
			Error  string `json:"error"`
			Code   string `json:"code"`
			Errors string `json:"errors"`
		}{},
	} {
		got, want := schemaFields(schemas[name].Value), jsonFields(reflect.TypeOf(typ))
		if !slices.Equal(got, want) {
			t.Errorf("schema %s has fields %v; the API writes %v", name, got, want)
		}
	}
	strs := func(vs any) []string {
		var out []string
		v := reflect.ValueOf(vs)
		for i := range v.Len() {
			out = append(out, v.Index(i).String())
		}
		slices.Sort(out)
		return out
	}
	for name, values := range map[string][]string{
		"State": strs(procman.States()), "Trigger": strs(procman.Triggers()), "Outcome": strs(procman.Outcomes()),
		"EventKind": strs(procman.EventKinds()), "Overlap": strs(procman.Overlaps()),
		"Type": {string(procman.Continuous), string(procman.OneTime)},
	} {
		var got []string
		for _, e := range schemas[name].Value.Enum {
			got = append(got, fmt.Sprint(e))
		}
		slices.Sort(got)
		if !slices.Equal(got, values) {
			t.Errorf("schema %s has %v; the API has %v", name, got, values)
		}
	}
}

// TestOpenAPIServed: GET /openapi.yaml answers the document, without a
// token (as the dashboard's files do).
func TestOpenAPIServed(t *testing.T) {
	_, ts := tokenServer(t)
	resp, err := http.Get(ts.URL + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" || !bytes.Equal(b, httpapi.OpenAPI) {
		t.Errorf("GET /openapi.yaml: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
}
