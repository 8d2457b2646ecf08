package procman

import (
	"fmt"
	"strings"
)

// Selector chooses jobs by their labels. Parse one with ParseSelector; the
// selector of every job is AllJobs. The zero Selector chooses none, and the
// bulk actions refuse it: acting on every job is asked for by name, never by
// an empty value.
type Selector struct {
	reqs []requirement
	all  bool
}

// requirement is one term of a selector.
type requirement struct {
	key, value string
	op         selectorOp
}

type selectorOp int

const (
	opEquals    selectorOp = iota // key=value
	opNotEquals                   // key!=value: also a job without the key
	opExists                      // key
	opNotExists                   // !key
)

// AllJobs is the selector of every job.
func AllJobs() Selector { return Selector{all: true} }

// ParseSelector reads a selector: terms joined by ',', every one of which a
// job's labels must meet: "key=value" (also "key==value"), "key!=value" (a
// job without the key meets it), "key" (it has the key), "!key" (it has
// not). Keys and values are as in labels; spaces around a term or around
// its operator are ignored. An empty or malformed selector is an error
// wrapping ErrInvalid that says what is wrong.
func ParseSelector(s string) (Selector, error) {
	if strings.TrimSpace(s) == "" {
		return Selector{}, fmt.Errorf("%w selector: it is empty; give terms such as tier=web,!canary", ErrInvalid)
	}
	var sel Selector
	for i, term := range strings.Split(s, ",") {
		r, why := parseRequirement(strings.TrimSpace(term))
		if why != "" {
			return Selector{}, fmt.Errorf("%w selector %q: term %d: %s", ErrInvalid, s, i+1, why)
		}
		sel.reqs = append(sel.reqs, r)
	}
	return sel, nil
}

func parseRequirement(t string) (requirement, string) {
	var r requirement
	switch {
	case t == "":
		return r, "empty term: terms are joined by single commas"
	case strings.HasPrefix(t, "!") && !strings.Contains(t, "="):
		r.op, r.key = opNotExists, strings.TrimSpace(t[1:])
	case strings.Contains(t, "!="):
		r.op = opNotEquals
		r.key, r.value, _ = strings.Cut(t, "!=")
	case strings.Contains(t, "=="):
		r.key, r.value, _ = strings.Cut(t, "==")
	case strings.Contains(t, "="):
		r.key, r.value, _ = strings.Cut(t, "=")
	default:
		r.op, r.key = opExists, t
	}
	r.key, r.value = strings.TrimSpace(r.key), strings.TrimSpace(r.value)
	if strings.ContainsAny(r.key, "=!") || strings.ContainsAny(r.value, "=!") {
		return r, fmt.Sprintf("%q: use key=value, key!=value, key or !key", t)
	}
	if why := checkLabelKey(r.key); why != "" {
		return r, why
	}
	return r, checkLabelValue(r.value)
}

// Matches reports whether a job with these labels is chosen.
func (s Selector) Matches(labels map[string]string) bool {
	if s.all {
		return true
	}
	for _, r := range s.reqs {
		v, has := labels[r.key]
		switch r.op {
		case opEquals:
			if !has || v != r.value {
				return false
			}
		case opNotEquals:
			if has && v == r.value {
				return false
			}
		case opExists:
			if !has {
				return false
			}
		case opNotExists:
			if has {
				return false
			}
		}
	}
	return len(s.reqs) > 0
}

// IsZero reports whether s is the zero Selector, which chooses no job.
func (s Selector) IsZero() bool { return !s.all && len(s.reqs) == 0 }

// IsAll reports whether s is AllJobs.
func (s Selector) IsAll() bool { return s.all }

// String writes s as ParseSelector reads it; AllJobs and the zero Selector
// are "".
func (s Selector) String() string {
	terms := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		switch r.op {
		case opEquals:
			terms[i] = r.key + "=" + r.value
		case opNotEquals:
			terms[i] = r.key + "!=" + r.value
		case opExists:
			terms[i] = r.key
		case opNotExists:
			terms[i] = "!" + r.key
		}
	}
	return strings.Join(terms, ",")
}

// selected returns the runners of the jobs sel chooses, sorted by name.
func (m *Manager) selected(sel Selector) []*runner {
	rs := m.runners()
	if sel.all {
		return rs
	}
	var out []*runner
	for _, r := range rs {
		r.mu.Lock()
		ok := sel.Matches(r.job.Labels)
		r.mu.Unlock()
		if ok {
			out = append(out, r)
		}
	}
	return out
}

// Select lists the names of the jobs sel chooses, sorted.
func (m *Manager) Select(sel Selector) []string {
	rs := m.selected(sel)
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.name
	}
	return names
}

// StatesOf returns the status of every job sel chooses, sorted by name.
func (m *Manager) StatesOf(sel Selector) []Status {
	rs := m.selected(sel)
	out := make([]Status, len(rs))
	for i, r := range rs {
		out[i] = r.status()
	}
	return out
}
