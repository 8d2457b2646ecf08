package httpapi

import (
	"net/http"
	"slices"
	"strings"
)

// routeMethods is every route of the API with the methods it answers to,
// for the Allow header of a 405: "{}" is any one path segment, "*" any rest.
// HEAD goes with every GET that only reads; the GET control routes change
// things, and HEAD, which must be safe, is refused there.
var routeMethods = []struct {
	path    string
	methods []string
}{
	{"/healthz", reads}, {"/jobs", reads}, {"/jobs/states", reads}, {"/events", reads}, {"/metrics", reads},
	{"/hosts", reads},
	{"/", reads}, {"/ui/*", reads},
	{"/job/create", []string{http.MethodPost}},
	{"/job/{}", []string{http.MethodGet, http.MethodHead, http.MethodPatch}},
	{"/job/replace/{}", []string{http.MethodPut}},
	{"/job/delete/{}", []string{http.MethodDelete}},
	{"/job/{}/start", control}, {"/job/{}/stop", control}, {"/job/{}/restart", control},
	{"/job/{}/state", reads}, {"/job/{}/runs", reads}, {"/job/{}/logs", reads},
	{"/job/{}/runs/{}", reads},
}

var (
	reads   = []string{http.MethodGet, http.MethodHead}
	control = []string{http.MethodGet, http.MethodPost}
)

// allowedMethods is the Allow header for path: the methods of every route
// that matches it, or "" if none does. A path can match more than one:
// /job/create is also the definition of a job named "create".
func allowedMethods(path string) string {
	var allow []string
	for _, rt := range routeMethods {
		if matchRoute(rt.path, path) {
			allow = append(allow, rt.methods...)
		}
	}
	slices.Sort(allow)
	return strings.Join(slices.Compact(allow), ", ")
}

func matchRoute(pattern, path string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(path, prefix)
	}
	ps, segs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(segs) {
		return false
	}
	for i, p := range ps {
		if p == "{}" && segs[i] == "" || p != "{}" && p != segs[i] {
			return false
		}
	}
	return true
}

// wrongMethod answers a request whose path exists for other methods with
// 405 and the methods that work there, and anything else with 404.
func wrongMethod(w http.ResponseWriter, r *http.Request) {
	allow := allowedMethods(r.URL.Path)
	if allow == "" {
		writeError(w, refuse(errNoRoute, "no such route: %s", r.URL.Path))
		return
	}
	methodNotAllowed(w, allow)
}
