package procman

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Format is how a document of jobs is written: YAML or JSON.
type Format string

const (
	// YAML is a document in YAML (1.2; anchors, aliases and merge keys work).
	YAML Format = "yaml"
	// JSON is a document in JSON.
	JSON Format = "json"
)

// FormatOf names the format of a file by its extension: JSON for .json,
// YAML for anything else (.yaml, .yml).
func FormatOf(path string) Format {
	if strings.HasSuffix(strings.ToLower(path), ".json") {
		return JSON
	}
	return YAML
}

// Document is the jobs a file declares: a map from each job's name to its
// definition, with the field names of the API.
//
//	jobs:
//	  web:
//	    command: ./server --port 8080
//	    type: continuous
//	    schedule: reboot
//
// Besides jobs, a document may hold keys that begin with "x-", which ProcMan
// ignores: a place for the anchors that the jobs' merge keys (<<: *defaults)
// refer to. Any other key is an error.
type Document struct {
	// Jobs are the definitions, in the document's order, each with its Name.
	Jobs []Job

	// lines locates jobs and fields in the text, for errors; nil for a
	// Document made in Go.
	lines map[string]jobLines
}

// jobLines is where a job's key and each of its fields were.
type jobLines struct {
	line   int
	fields map[string]int
}

// problemAt is a problem of the document at a line: of a field of a job,
// of a job, or of the document itself.
func problemAt(job, field string, line int, format string, args ...any) *FieldError {
	return &FieldError{Job: job, Field: field, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// locate gives each problem of job the line of its field (else of the job).
func (d Document) locate(job string, errs ...error) []error {
	var out []error
	for _, err := range errs {
		fes := FieldErrors(err)
		if err != nil && len(fes) == 0 { // not a field's: the job's
			fes = []*FieldError{{Msg: err.Error()}}
		}
		for _, fe := range fes {
			at := *fe
			at.Job = job
			if jl, ok := d.lines[job]; ok && at.Line == 0 {
				at.Line = jl.line
				if l, ok := jl.fields[at.Field]; ok {
					at.Line = l
				}
			}
			out = append(out, &at)
		}
	}
	return out
}

// invalidDocument is every problem of a document. It wraps ErrInvalid, and
// FieldErrors lists the problems.
type invalidDocument struct{ errs []error }

func (e *invalidDocument) Error() string {
	msgs := make([]string, len(e.errs))
	for i, err := range e.errs {
		msgs[i] = err.Error()
	}
	what := "problem"
	if len(msgs) > 1 {
		what = "problems"
	}
	return fmt.Sprintf("%d %s in the document: %s", len(msgs), what, strings.Join(msgs, "; "))
}

func (e *invalidDocument) Unwrap() []error { return e.errs }

func documentError(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return &invalidDocument{errs: errs}
}

// ParseDocument reads a document of jobs in format. Its error lists every
// problem the document has on its own (a text that is not YAML or JSON, an
// unknown key, a job given twice, a field of the wrong type, a definition
// that Job.Validate refuses), each a *FieldError with the job, the field and
// the line; what only a Manager can check (users, dependencies) is Apply's.
// A job without a type is OneTime, as with DecodeJob.
func ParseDocument(data []byte, format Format) (Document, error) {
	var root *node
	var err error
	switch format {
	case JSON:
		root, err = parseJSONTree(data)
	case YAML:
		root, err = parseYAMLTree(data)
	default:
		return Document{}, fmt.Errorf("%w document: unknown format %q: want %q or %q", ErrInvalid, format, YAML, JSON)
	}
	if err != nil {
		return Document{}, documentError([]error{err})
	}
	return documentOf(root)
}

// documentOf reads the document's structure: jobs, and x- keys.
func documentOf(root *node) (Document, error) {
	if root.kind != objectNode {
		return Document{}, documentError([]error{problemAt("", "", root.line,
			"a document is a mapping with the key jobs (jobs: {name: {command: ...}, ...})")})
	}
	var errs []error
	var jobs *member
	for i, mb := range root.members {
		switch {
		case mb.key == "jobs" && jobs != nil:
			errs = append(errs, problemAt("", "jobs", mb.line, "given twice (first at line %d)", jobs.line))
		case mb.key == "jobs":
			jobs = &root.members[i]
		case !strings.HasPrefix(mb.key, "x-"):
			errs = append(errs, problemAt("", mb.key, mb.line, "unknown key: a document has jobs, and x- keys for anchors"))
		}
	}
	switch {
	case jobs == nil && len(errs) == 0:
		errs = append(errs, problemAt("", "jobs", root.line, "missing: the document declares no jobs (jobs: {} declares none on purpose)"))
	case jobs != nil && jobs.val.kind != objectNode:
		errs = append(errs, problemAt("", "jobs", jobs.line, "want a mapping from job names to definitions, got %s (jobs: {} declares none)", jobs.val.kind))
	}
	if len(errs) > 0 {
		return Document{}, documentError(errs)
	}
	d := Document{lines: map[string]jobLines{}}
	for _, mb := range jobs.val.members {
		if first, ok := d.lines[mb.key]; ok {
			errs = append(errs, problemAt(mb.key, "", mb.line, "defined twice (first at line %d)", first.line))
			continue
		}
		j, fields, jerrs := decodeJobNode(mb.key, mb.val)
		d.lines[mb.key] = jobLines{line: mb.line, fields: fields}
		errs = append(errs, d.locate(mb.key, append(jerrs, validateRest(j, jerrs))...)...)
		d.Jobs = append(d.Jobs, j)
	}
	if len(errs) > 0 {
		slices.SortStableFunc(errs, func(a, b error) int { return lineOf(a) - lineOf(b) }) // as the reader reads them
		return Document{}, documentError(errs)
	}
	return d, nil
}

func lineOf(err error) int {
	if fe, ok := err.(*FieldError); ok {
		return fe.Line
	}
	return 0
}

// validateRest validates what decoded of a job: its problems but those of
// the fields that did not decode, which would be said twice.
func validateRest(j Job, decoding []error) error {
	bad := map[string]bool{}
	for _, fe := range FieldErrors(errors.Join(decoding...)) {
		if fe.Field == "" { // the job itself could not be read
			return nil
		}
		bad[fe.Field] = true
	}
	var errs []error
	for _, fe := range FieldErrors(j.Validate()) {
		if !bad[fe.Field] {
			errs = append(errs, fe)
		}
	}
	return errors.Join(errs...)
}

// decodeJobNode reads one job's definition as DecodeJob reads a job, but
// reports every problem, not the first, each with its line.
func decodeJobNode(name string, n *node) (Job, map[string]int, []error) {
	fields := map[string]int{}
	if n.kind != objectNode {
		return Job{Name: name}, fields, []error{problemAt(name, "", n.line, "want a mapping of the job's fields, got %s", n.kind)}
	}
	var errs []error
	var def bytes.Buffer
	def.WriteByte('{')
	for _, mb := range n.members {
		if first, ok := fields[mb.key]; ok {
			errs = append(errs, problemAt(name, mb.key, mb.line, "given twice (first at line %d)", first))
			continue
		}
		fields[mb.key] = mb.line
		if err := knownField(mb.key, mb.key, jobFields); err != nil {
			errs = append(errs, err)
			continue
		}
		raw, err := mb.val.json()
		if err != nil {
			err = invalid(mb.key, "%v", err)
		} else {
			err = decodeField(mb.key, raw, name)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if def.Len() > 1 {
			def.WriteByte(',')
		}
		key, _ := json.Marshal(mb.key)
		def.Write(key)
		def.WriteByte(':')
		def.Write(raw)
	}
	def.WriteByte('}')
	var j Job
	if err := json.Unmarshal(def.Bytes(), &j); err != nil { // each field decoded alone already
		errs = append(errs, problemAt(name, "", n.line, "%v", err))
	}
	j.Name = name
	j.fillDefaults()
	return j, fields, errs
}

// decodeField decodes one field alone, to say what is wrong with it. The
// field name, if given, must be the job's own.
func decodeField(field string, raw json.RawMessage, job string) error {
	if field == "name" {
		var s string
		if json.Unmarshal(raw, &s) != nil || s != job {
			return invalid("name", "is %s, but the job's key is %q: leave name out, or make it the key", raw, job)
		}
		return nil
	}
	var j Job
	err := json.Unmarshal(append(append([]byte(`{"`+field+`":`), raw...), '}'), &j)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return invalid(field, "want a %s, got %s", kindName(te.Type.Kind().String()), te.Value)
	}
	return invalid(field, "%s", strings.TrimPrefix(err.Error(), "json: "))
}

// kindName is a Go kind as a document's reader knows it.
func kindName(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "whole number"
	case kind == "map" || kind == "struct":
		return "mapping"
	case kind == "slice":
		return "list"
	}
	return kind
}

// Marshal writes the document in format, each job's fields in the order of
// the API, without its name (the key is the name). ParseDocument reads it
// back as it was.
func (d Document) Marshal(format Format) ([]byte, error) {
	switch format {
	case JSON:
		return d.marshalJSON()
	case YAML:
		return d.marshalYAML()
	}
	return nil, fmt.Errorf("%w document: unknown format %q: want %q or %q", ErrInvalid, format, YAML, JSON)
}

func (d Document) marshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"jobs":{`)
	for i, j := range d.Jobs {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(j.Name)
		b.Write(name)
		b.WriteByte(':')
		def, err := definitionJSON(j)
		if err != nil {
			return nil, err
		}
		b.Write(def)
	}
	b.WriteString("}}")
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// definitionJSON is the job's JSON without its name, its fields in order.
func definitionJSON(j Job) ([]byte, error) {
	raw, err := json.Marshal(j)
	if err != nil {
		return nil, err
	}
	tree, err := parseJSONTree(raw)
	if err != nil {
		return nil, err
	}
	// The name is the key; an empty string (schedule) is the default, as if not given.
	tree.members = slices.DeleteFunc(tree.members, func(m member) bool { return m.key == "name" || string(m.val.raw) == `""` })
	return tree.json()
}

// nodeKind is the kind of a value of a document.
type nodeKind int

const (
	scalarNode nodeKind = iota
	objectNode
	arrayNode
)

func (k nodeKind) String() string {
	switch k {
	case objectNode:
		return "a mapping"
	case arrayNode:
		return "a list"
	}
	return "a single value"
}

// node is a value of a document as JSON sees it, with the line it is on:
// YAML and JSON texts are both read into it.
type node struct {
	line    int
	kind    nodeKind
	members []member        // objectNode, in order
	items   []*node         // arrayNode
	raw     json.RawMessage // scalarNode: its JSON
}

type member struct {
	key  string
	line int
	val  *node
}

// json writes the value as JSON; a mapping that gives a key twice is an error.
func (n *node) json() (json.RawMessage, error) {
	var b bytes.Buffer
	if err := n.writeJSON(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (n *node) writeJSON(b *bytes.Buffer) error {
	switch n.kind {
	case scalarNode:
		b.Write(n.raw)
	case arrayNode:
		b.WriteByte('[')
		for i, it := range n.items {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := it.writeJSON(b); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case objectNode:
		b.WriteByte('{')
		seen := map[string]int{}
		for i, mb := range n.members {
			if first, ok := seen[mb.key]; ok {
				return fmt.Errorf("%q given twice (lines %d and %d)", mb.key, first, mb.line)
			}
			seen[mb.key] = mb.line
			if i > 0 {
				b.WriteByte(',')
			}
			key, _ := json.Marshal(mb.key)
			b.Write(key)
			b.WriteByte(':')
			if err := mb.val.writeJSON(b); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	}
	return nil
}

// lineIndex turns byte offsets into line numbers.
type lineIndex []int // the offset of each line's start

func newLineIndex(data []byte) lineIndex {
	idx := lineIndex{0}
	for i, c := range data {
		if c == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

// line is the 1-based line of offset.
func (idx lineIndex) line(offset int64) int {
	n, _ := slices.BinarySearch(idx, int(offset)+1)
	return n
}

// parseJSONTree reads exactly one JSON value, strictly (as DecodeJob does).
func parseJSONTree(data []byte) (*node, error) {
	p := jsonParser{dec: json.NewDecoder(bytes.NewReader(data)), lines: newLineIndex(data)}
	p.dec.UseNumber()
	n, err := p.value()
	if err != nil {
		return nil, err
	}
	if _, err := p.dec.Token(); err != io.EOF {
		return nil, problemAt("", "", p.here(), "not JSON: trailing data after the document")
	}
	return n, nil
}

type jsonParser struct {
	dec   *json.Decoder
	lines lineIndex
}

func (p *jsonParser) here() int { return p.lines.line(p.dec.InputOffset()) }

func (p *jsonParser) fail(err error) error {
	line := p.here()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line = p.lines.line(se.Offset)
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return problemAt("", "", line, "not JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func (p *jsonParser) value() (*node, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, p.fail(err)
	}
	n := &node{line: p.here()}
	switch tok {
	case json.Delim('{'):
		n.kind = objectNode
		for p.dec.More() {
			key, err := p.dec.Token()
			if err != nil {
				return nil, p.fail(err)
			}
			mb := member{key: key.(string), line: p.here()}
			if mb.val, err = p.value(); err != nil {
				return nil, err
			}
			n.members = append(n.members, mb)
		}
	case json.Delim('['):
		n.kind = arrayNode
		for p.dec.More() {
			it, err := p.value()
			if err != nil {
				return nil, err
			}
			n.items = append(n.items, it)
		}
	default:
		n.raw, _ = json.Marshal(tok) // a json.Number stays as written
		return n, nil
	}
	if _, err := p.dec.Token(); err != nil { // the closing delimiter
		return nil, p.fail(err)
	}
	return n, nil
}
