package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	"github.com/Mk-Chan/procman"
)

// A bulk action (POST /jobs/start|stop|restart) is for the jobs of the whole
// fleet: the host that receives it acts on its own jobs, sends the same
// request to every other live host, which acts on its own only (the request
// carries ForwardedBy), and answers with all the results. A job whose host
// is dead, advertises no URL or did not answer keeps the result this host
// has for it: an error that says so.

// peerAnswer is what one other host answered to a bulk action.
type peerAnswer struct {
	host    procman.Host
	results []bulkResult
	err     error // the host did not answer, or refused (its error answer)
}

// fanOut sends r to every other live host that advertises a URL and merges
// their results with local, this host's.
func (f *forwarder) fanOut(r *http.Request, local []bulkResult) []bulkResult {
	hosts, err := f.m.Hosts(r.Context())
	if err != nil {
		return local // the jobs of other hosts keep their "elsewhere" results
	}
	var answers []peerAnswer
	for _, h := range hosts {
		if h.Alive && !h.This && h.Advertise != "" {
			answers = append(answers, peerAnswer{host: h})
		}
	}
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() { answers[i].results, answers[i].err = f.ask(r, answers[i].host) })
	}
	wg.Wait()
	return merge(local, answers)
}

// merge is local's results, but for those of jobs that another host
// answered for, followed by the other hosts' results, host by host.
func merge(local []bulkResult, answers []peerAnswer) []bulkResult {
	answered := map[string]bool{}
	failed := map[string]error{}
	for _, a := range answers {
		if a.err != nil {
			failed[a.host.Name] = a.err
		}
		for _, x := range a.results {
			answered[x.Name] = true
		}
	}
	out := local[:0:0]
	for _, x := range local {
		switch {
		case x.owner == nil:
		case answered[x.Name]:
			continue
		case failed[x.owner.Host] != nil:
			err := failed[x.owner.Host]
			x.Code, x.Error = codeOf(err), fmt.Sprintf("%v: %v", x.owner, err)
		}
		out = append(out, x)
	}
	for _, a := range answers {
		out = append(out, a.results...)
	}
	return out
}

// ask sends the bulk action r to host, to act on its own jobs, and returns
// its results.
func (f *forwarder) ask(r *http.Request, host procman.Host) ([]bulkResult, error) {
	u, err := url.Parse(host.Advertise)
	if err != nil {
		return nil, &refusal{kind: procman.ErrElsewhere, cause: err, msg: fmt.Sprintf("host %q advertises %q, not a URL", host.Name, host.Advertise)}
	}
	u = u.JoinPath(r.URL.Path)
	u.RawQuery = r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header = f.header(r)
	resp, err := f.transport.RoundTrip(req)
	if err != nil {
		return nil, &refusal{kind: errUnreachable, cause: err,
			msg: fmt.Sprintf("host %q did not answer at %s: %v", host.Name, u.Redacted(), err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var body errorBody
		json.NewDecoder(resp.Body).Decode(&body)
		return nil, &peerError{host: host.Name, status: resp.StatusCode, body: body}
	}
	var out []bulkResult
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, &refusal{kind: errUnreachable, cause: err,
			msg: fmt.Sprintf("host %q answered at %s with what is not a bulk action's answer: %v", host.Name, u.Redacted(), err)}
	}
	return out, nil
}

// peerError is another host's error answer.
type peerError struct {
	host   string
	status int
	body   errorBody
}

func (e *peerError) Error() string {
	return fmt.Sprintf("host %q answered %d %s: %s", e.host, e.status, e.body.Code, e.body.Error)
}

// codeOf is the code of err: another host's own, if it answered with an error.
func codeOf(err error) string {
	if pe, ok := errors.AsType[*peerError](err); ok && pe.body.Code != "" {
		return pe.body.Code
	}
	_, code := statusOf(err)
	return code
}
