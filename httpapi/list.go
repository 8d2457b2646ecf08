package httpapi

import (
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/Mk-Chan/procman"
	"github.com/julienschmidt/httprouter"
)

// jobList answers GET /jobs: every job's definition with its state. Clients
// poll it, and definitions rarely change, so each definition is encoded once
// per version (procman.Entry.Version) and kept: a listing writes the states
// afresh and copies the rest.
type jobList struct {
	m *procman.Manager
	// last is what the last listing encoded, in name order: immutable once
	// stored, so that listings read it without a lock.
	last atomic.Pointer[[]encodedDef]
	bufs sync.Pool // of *[]byte: a listing of 10,000 jobs is a megabyte
}

// encodedDef is a definition and its source as JSON, without the closing brace.
type encodedDef struct {
	name    string
	version uint64
	json    []byte
}

func (a *api) list(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	sel, err := listSelector(r)
	if err != nil {
		writeError(w, err)
		return
	}
	bp, _ := a.jobs.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	b := append(a.jobs.appendJSON((*bp)[:0], sel), '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
	*bp = b
	a.jobs.bufs.Put(bp)
}

// appendJSON appends every entry sel chooses as a JSON array to b, as
// encoding/json writes []procman.Entry. What it keeps covers every job,
// whatever sel, so that filtered and whole listings share it.
func (l *jobList) appendJSON(b []byte, sel procman.Selector) []byte {
	var old []encodedDef
	if p := l.last.Load(); p != nil {
		old = *p
	}
	// next is made at the first difference from old: until then, every
	// entry so far has matched old's in turn.
	var next []encodedDef
	i, seen, n := 0, 0, 0 // the next of old to compare; entries seen; entries written
	b = append(b, '[')
	for e := range l.m.AllEntries() {
		for i < len(old) && old[i].name < e.Name { // deleted since
			next = l.diverge(next, old, seen)
			i++
		}
		var def encodedDef
		if i < len(old) && old[i].name == e.Name && old[i].version == e.Version {
			def = old[i]
			i++
		} else {
			next = l.diverge(next, old, seen)
			def = encode(e)
		}
		if next != nil {
			next = append(next, def)
		}
		seen++
		if !sel.Matches(e.Labels) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, def.json...)
		b = append(b, `,"state":"`...)
		b = append(b, e.State...) // a state name needs no escaping
		b = append(b, `","host":`...)
		b = appendString(b, e.Host) // not the definition's: a floating job moves
		b = append(b, '}')
		n++
	}
	if i < len(old) { // the last ones deleted since
		next = l.diverge(next, old, seen)
	}
	if next != nil {
		l.last.Store(&next)
	}
	return append(b, ']')
}

// diverge returns next, made from the first n of old if it is not made yet.
func (l *jobList) diverge(next, old []encodedDef, n int) []encodedDef {
	if next != nil {
		return next
	}
	return append(make([]encodedDef, 0, max(len(old), n+1)), old[:n]...)
}

// appendString appends s as encoding/json writes it: as it is when no byte
// of it needs escaping (a host's name, nearly always), without allocating.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}

// encode writes the entry but its state and host: the definition, then its
// source, which never changes for a version. Entry.Host hides the
// definition's host in an entry's JSON.
func encode(e procman.Entry) encodedDef {
	e.Job.Host = ""
	j, _ := json.Marshal(e.Job) // a Job always encodes
	src, _ := json.Marshal(e.Source)
	j = append(append(j[:len(j)-1], `,"source":`...), src...)
	return encodedDef{name: e.Name, version: e.Version, json: j}
}

// listSelector is the selector of a listing: ?selector=..., or every job.
func listSelector(r *http.Request) (procman.Selector, error) {
	q := r.URL.Query()
	if !q.Has("selector") {
		return procman.AllJobs(), nil
	}
	return procman.ParseSelector(q.Get("selector"))
}
