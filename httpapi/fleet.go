package httpapi

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// fleetHosts answers GET /hosts: every host of the fleet on the database, alive or
// not (procman.Manager.Hosts).
func (a *api) fleetHosts(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	hosts, err := a.m.Hosts(r.Context())
	a.reply(w, http.StatusOK, hosts, err)
}
