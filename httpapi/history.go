package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/Mk-Chan/procman"
	"github.com/julienschmidt/httprouter"
)

// heartbeat keeps idle event streams open through proxies.
const heartbeat = 15 * time.Second

func (a *api) runs(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	limit, err := intParam(r, "limit", procman.MaxRunsLimit)
	var runs []procman.Run
	if err == nil {
		runs, err = a.m.Runs(r.Context(), p.ByName("name"), procman.RunsOptions{Limit: limit})
	}
	a.reply(w, http.StatusOK, runs, err)
}

func (a *api) run(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	id, err := strconv.ParseInt(p.ByName("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, refuse(procman.ErrNotFound, "no run %q", p.ByName("id")))
		return
	}
	run, err := a.m.Run(r.Context(), p.ByName("name"), id)
	a.reply(w, http.StatusOK, run, err)
}

// logs serves a run's output as text/plain; with follow=1 it streams until the
// run ends or the client goes away (which cancels the request's context).
func (a *api) logs(w http.ResponseWriter, r *http.Request, p httprouter.Params) {
	name := p.ByName("name")
	tail, err := intParam(r, "tail", procman.MaxTail)
	if err != nil {
		a.reply(w, 0, nil, err)
		return
	}
	var run int64
	if s := r.URL.Query().Get("run"); s != "" {
		if run, err = strconv.ParseInt(s, 10, 64); err != nil || run <= 0 {
			writeError(w, refuse(procman.ErrNotFound, "no run %q", s))
			return
		}
	}
	follow := r.URL.Query().Get("follow")
	head := r.Method == http.MethodHead // the headers alone: nothing to read, nothing to follow
	opts := procman.LogOptions{Run: run, Tail: tail, Follow: !head && (follow == "1" || follow == "true")}
	rc, err := a.m.Logs(r.Context(), name, opts)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if head {
		return
	}
	if !opts.Follow {
		io.Copy(w, rc)
		return
	}
	rcw := http.NewResponseController(w)
	rcw.SetWriteDeadline(time.Time{}) // a follow lasts as long as the run
	w.WriteHeader(http.StatusOK)
	rcw.Flush()
	buf := make([]byte, 32<<10)
	for {
		n, err := rc.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			rcw.Flush()
		}
		if err != nil {
			return
		}
	}
}

// events streams every state change as Server-Sent Events.
func (a *api) events(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	events, cancel := a.m.Subscribe(r.Context())
	defer cancel()
	rcw := http.NewResponseController(w)
	rcw.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	fmt.Fprint(w, ": procman events\n\n")
	rcw.Flush()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			b, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Type, b); err != nil {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
		}
		rcw.Flush()
	}
}

// intParam reads an optional positive integer query parameter up to max;
// absent means 0.
func intParam(r *http.Request, key string, max int) (int, error) {
	s := r.URL.Query().Get(key)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > max {
		return 0, fmt.Errorf("%w: %s must be a whole number from 1 to %d, got %q", procman.ErrInvalid, key, max, s)
	}
	return n, nil
}
