package httpapi

import (
	"net/http"

	"github.com/Mk-Chan/procman"
	"github.com/julienschmidt/httprouter"
)

// signal sends ?sig= to the job's running run (POST /job/{name}/signal) and
// answers its status.
func (a *api) signal(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	name := p.ByName("name")
	s := r.URL.Query().Get("sig")
	if s == "" {
		writeError(w, refuse(procman.ErrInvalid, "sig is required: POST /job/%s/signal?sig=HUP, a signal as stop_signal names it or a number from 1 to %d",
			name, procman.MaxSignal))
		return
	}
	sig, err := procman.ParseSignal(s)
	if err == nil {
		err = a.m.Signal(r.Context(), name, sig)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	st, err := a.m.State(name)
	a.reply(w, http.StatusOK, st, err)
}

// usage is what the job's running run costs now (GET /job/{name}/usage).
func (a *api) usage(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	u, err := a.m.Usage(r.Context(), p.ByName("name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.reply(w, http.StatusOK, u, nil)
}

// usages is what every running job costs now (GET /jobs/usage[?pss=1]).
func (a *api) usages(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var opts procman.UsageOptions
	switch pss := r.URL.Query().Get("pss"); pss {
	case "", "0", "false":
	case "1", "true":
		opts.PSS = true
	default:
		writeError(w, refuse(procman.ErrInvalid, "pss must be 1 or 0, got %q", pss))
		return
	}
	sel, err := listSelector(r)
	if err != nil {
		a.reply(w, 0, nil, err)
		return
	}
	opts.Selector = sel
	us, err := a.m.Usages(r.Context(), opts)
	a.reply(w, http.StatusOK, us, err)
}
