package httpapi

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"github.com/Mk-Chan/procman"
	"github.com/julienschmidt/httprouter"
)

// route is one route of the API: a method, a path in the form of the
// OpenAPI document (openapi.yaml), where "{name}" is one path segment, and
// its handler, which gets each such segment by its name.
type route struct {
	method, path string
	h            httprouter.Handle
}

// routes is every route of the API, and the only place one is added:
// TestOpenAPIDocumentsEveryRoute fails for a route the document lacks. HEAD
// goes with every GET that only reads; the GET control routes change
// things, and HEAD, which must be safe, has none there.
func (a *api) routes() []route {
	var rs []route
	add := func(path string, h httprouter.Handle, methods ...string) {
		for _, m := range methods {
			rs = append(rs, route{m, path, h})
		}
	}
	read := func(path string, h httprouter.Handle) { add(path, h, http.MethodGet, http.MethodHead) }
	control := func(path string, op func(*procman.Manager, context.Context, string) error) {
		add(path, a.control(op), http.MethodGet, http.MethodPost)
	}
	read("/healthz", a.healthz)
	read("/jobs", a.list)
	read("/jobs/states", a.states)
	read("/jobs/usage", a.usages)
	read("/hosts", a.fleetHosts)
	add("/jobs/start", a.bulk((*procman.Manager).StartJobs), http.MethodPost)
	add("/jobs/stop", a.bulk((*procman.Manager).StopJobs), http.MethodPost)
	add("/jobs/restart", a.bulk((*procman.Manager).RestartJobs), http.MethodPost)
	add("/job/create", a.create, http.MethodPost)
	read("/job/{name}", a.get)
	add("/job/{name}", a.update, http.MethodPatch)
	add("/job/replace/{name}", a.replace, http.MethodPut)
	add("/job/delete/{name}", a.remove, http.MethodDelete)
	control("/job/{name}/start", (*procman.Manager).Start)
	add("/job/{name}/stop", a.stop, http.MethodGet, http.MethodPost)
	control("/job/{name}/restart", (*procman.Manager).Restart)
	read("/job/{name}/state", a.state)
	read("/job/{name}/runs", a.runs)
	read("/job/{name}/runs/{id}", a.run)
	read("/job/{name}/logs", a.logs)
	add("/job/{name}/signal", a.signal, http.MethodPost)
	read("/job/{name}/usage", a.usage)
	add("/apply", a.apply, http.MethodPost)
	read("/events", a.events)
	read("/metrics", handle(metricsHandler(a.m)))
	read("/openapi.yaml", serveOpenAPI)
	ui := handle(uiHandler())
	read("/", uiRedirect)  // the web dashboard (ui.go)
	read("/ui/", ui)       // its page
	read("/ui/{file}", ui) // its files, embedded from ui/
	return rs
}

// group is the routes httprouter sees as one: the same method and pattern.
type group struct {
	method, pattern string
	routes          []route
}

// groups gathers the routes by the pattern they have in httprouter, which
// cannot hold a fixed segment beside a wildcard one (/job/create beside
// /job/{name}): every segment under /job/ is a wildcard there, and the
// routes that share a pattern are told apart by dispatch. /ui/ and its files
// share a catch-all.
func groups(rs []route) []group {
	var gs []group
	for _, rt := range rs {
		pattern := routerPattern(rt.path)
		i := slices.IndexFunc(gs, func(g group) bool { return g.method == rt.method && g.pattern == pattern })
		if i < 0 {
			gs = append(gs, group{method: rt.method, pattern: pattern})
			i = len(gs) - 1
		}
		gs[i].routes = append(gs[i].routes, rt)
	}
	return gs
}

func routerPattern(path string) string {
	if strings.HasPrefix(path, "/ui/") {
		return "/ui/*file"
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") || i > 1 && segs[1] == "job" {
			segs[i] = ":p" + string(rune('0'+i))
		}
	}
	return strings.Join(segs, "/")
}

// dispatch serves a group's requests: by the first of its routes that the
// path matches, else as a wrong method (or no route).
func (a *api) dispatch(rs []route) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		for _, rt := range rs {
			if p, ok := match(rt.path, r.URL.Path); ok {
				rt.h(w, r, p)
				return
			}
		}
		a.wrongMethod(w, r)
	}
}

// match reports whether path matches the route's, segment by segment, and
// gives the value of each "{name}" segment, which may not be empty.
func match(pattern, path string) (httprouter.Params, bool) {
	var p httprouter.Params
	for {
		ps, prest, pmore := strings.Cut(pattern, "/")
		s, rest, more := strings.Cut(path, "/")
		switch {
		case strings.HasPrefix(ps, "{"):
			if s == "" {
				return nil, false
			}
			p = append(p, httprouter.Param{Key: ps[1 : len(ps)-1], Value: s})
		case ps != s:
			return nil, false
		}
		if !pmore || !more {
			return p, pmore == more
		}
		pattern, path = prest, rest
	}
}

// allowedMethods is the Allow header for path: the methods of every route
// that matches it, or "" if none does. A path can match more than one:
// /job/create is also the definition of a job named "create".
func (a *api) allowedMethods(path string) string {
	var allow []string
	for _, rt := range a.table {
		if _, ok := match(rt.path, path); ok {
			allow = append(allow, rt.method)
		}
	}
	slices.Sort(allow)
	return strings.Join(slices.Compact(allow), ", ")
}

// wrongMethod answers a request whose path exists for other methods with
// 405 and the methods that work there, and anything else with 404.
func (a *api) wrongMethod(w http.ResponseWriter, r *http.Request) {
	allow := a.allowedMethods(r.URL.Path)
	if allow == "" {
		writeError(w, refuse(errNoRoute, "no such route: %s", r.URL.Path))
		return
	}
	methodNotAllowed(w, allow)
}
