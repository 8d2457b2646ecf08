package procman

import (
	"bytes"

	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
)

// DecodeJob reads one job definition from JSON, strictly: member names must
// be the fields' own (encoding/json would take "NAME" for "name"), no member
// may be given twice (encoding/json keeps the last, another parser the first),
// and unknown fields, trailing data and malformed values are refused. Errors
// wrap ErrInvalid and name the field. A job without a type is OneTime.
func DecodeJob(data []byte) (Job, error) {
	if err := checkStrict(data, jobFields); err != nil {
		return Job{}, err
	}
	var j Job
	if err := json.Unmarshal(data, &j); err != nil {
		return Job{}, decodeError(data, err)
	}
	j.fillDefaults()
	return j, nil
}

// jobFields are the JSON names of Job's fields, read from its tags so that a
// new field is known here the moment it is declared; objectFields, those of
// the fields that are objects of fixed members. Never modified.
var (
	jobFields    = jsonNames(reflect.TypeFor[Job]())
	objectFields = map[string][]string{"health": jsonNames(reflect.TypeFor[HealthCheck]())}
)

func jsonNames(t reflect.Type) []string {
	var names []string
	for _, f := range reflect.VisibleFields(t) {
		if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// checkStrict reads data as exactly one JSON object whose member names are
// among fields, with no name given twice in it or in any object inside it.
func checkStrict(data []byte, fields []string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // numbers are only read past, never rounded
	tok, err := dec.Token()
	if err != nil {
		return malformed(err)
	}
	if tok != json.Delim('{') {
		return fmt.Errorf("%w job: want a JSON object", ErrInvalid)
	}
	if err := checkMembers(dec, "", fields); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w job: trailing data after the JSON object", ErrInvalid)
	}
	return nil
}

// checkMembers reads an object's members up to its closing brace. field is
// the job field the object belongs to ("" for the job itself); fields, if
// not nil, are the names allowed, each then a field of its own in errors
// ("health.interval").
func checkMembers(dec *json.Decoder, field string, fields []string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return malformed(err)
		}
		name := tok.(string) // an object's tokens alternate name, value
		member := name
		if field != "" {
			member = field + "." + name
		}
		if fields != nil {
			if err := knownField(name, member, fields); err != nil {
				return err
			}
		}
		switch {
		case seen[name] && fields != nil:
			return invalid(member, "given twice")
		case seen[name]:
			return invalid(field, "%q given twice", name)
		}
		seen[name] = true
		inner := field // a member of env is no field
		if fields != nil {
			inner = member
		}
		if err := checkValue(dec, inner); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return malformed(err)
}

// knownField checks that name is among fields; member is its name in errors.
func knownField(name, member string, fields []string) error {
	if slices.Contains(fields, name) {
		return nil
	}
	for _, f := range fields {
		if strings.EqualFold(f, name) {
			return invalid(member, "unknown field (field names are lower case: %q)", f)
		}
	}
	return invalid(member, "unknown field")
}

// checkValue reads one value, checking the objects in it.
func checkValue(dec *json.Decoder, field string) error {
	tok, err := dec.Token()
	if err != nil {
		return malformed(err)
	}
	switch tok {
	case json.Delim('{'):
		return checkMembers(dec, field, objectFields[field])
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, field); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return malformed(err)
	}
	return nil
}

// malformed wraps a syntax error of the JSON text.
func malformed(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w job: malformed JSON: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "json: "))
}

// decodeError finds the field behind a decoding error: encoding/json does not
// say which field a custom unmarshaler (Duration) failed on, so each field is
// decoded alone until one fails (and each member of health, in it).
func decodeError(data []byte, err error) error {
	if fe := fieldOfError(data, "", func() any { return new(Job) }); fe != nil {
		return fe
	}
	return fmt.Errorf("%w job: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "json: "))
}

// fieldOfError decodes each member of the object data alone into a new
// value of into, and returns an error naming the first that fails; nil if
// none does. prefix is the object's own field ("" for the job).
func fieldOfError(data []byte, prefix string, into func() any) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		one, _ := json.Marshal(map[string]json.RawMessage{k: fields[k]})
		e := json.Unmarshal(one, into())
		if e == nil {
			continue
		}
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		if name == "health" && bytes.HasPrefix(bytes.TrimSpace(fields[k]), []byte("{")) {
			if fe := fieldOfError(fields[k], name, func() any { return new(HealthCheck) }); fe != nil {
				return fe
			}
		}
		var te *json.UnmarshalTypeError
		if errors.As(e, &te) {
			return invalid(name, "want a JSON %s, got %s", jsonKind(te.Type), te.Value)
		}
		return invalid(name, "%s", strings.TrimPrefix(e.Error(), "json: "))
	}
	return nil
}

// jsonKind names what JSON value a Go type is read from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Struct, reflect.Map, reflect.Pointer:
		return "object"
	case reflect.Slice:
		return "array"
	}
	return t.Kind().String()
}

// MergePatch returns an edit for Manager.Update that applies patch, a JSON
// merge patch (RFC 7396), to a job's definition as the API shows it: each
// member of the patch replaces the job's, a null removes it (the field takes
// its default), and an object (env) is merged member by member, so that
// {"env":{"DEBUG":null}} removes one variable and keeps the others. The
// patch is read as strictly as DecodeJob reads a job.
func MergePatch(patch []byte) func(*Job) error {
	return func(j *Job) error {
		if err := checkStrict(patch, jobFields); err != nil {
			return fmt.Errorf("merge patch: %w", err)
		}
		cur, err := json.Marshal(j)
		if err != nil {
			return err
		}
		next, err := DecodeJob(mergeJSON(cur, patch))
		if err != nil {
			return err
		}
		*j = next
		return nil
	}
}

// mergeJSON is RFC 7396's MergePatch(Target, Patch) on valid JSON texts.
func mergeJSON(target, patch json.RawMessage) json.RawMessage {
	var p map[string]json.RawMessage
	if json.Unmarshal(patch, &p) != nil || p == nil {
		return patch // not an object: it replaces the target
	}
	var t map[string]json.RawMessage
	if json.Unmarshal(target, &t) != nil || t == nil {
		t = map[string]json.RawMessage{}
	}
	for k, v := range p {
		if string(bytes.TrimSpace(v)) == "null" {
			delete(t, k)
		} else {
			t[k] = mergeJSON(t[k], v)
		}
	}
	out, _ := json.Marshal(t) // raw members that were valid JSON
	return out
}
