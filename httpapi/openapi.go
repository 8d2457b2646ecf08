package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// OpenAPI is the OpenAPI 3.1 document of the API: every route, with its
// parameters, bodies and answers. The tests hold the API to it.
//
//go:embed openapi.yaml
var OpenAPI []byte

// serveOpenAPI answers GET /openapi.yaml. It needs no token, as the
// dashboard's files do not: it describes the API and holds nothing of this
// ProcMan's.
func serveOpenAPI(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	if r.Method == http.MethodHead {
		return
	}
	w.Write(OpenAPI)
}
