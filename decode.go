package procman

import (
	"bytes"
	"cmp"
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
// new field is known here the moment it is declared. Never modified.
var jobFields = jsonNames(reflect.TypeFor[Job]())

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
// not nil, are the names allowed.
func checkMembers(dec *json.Decoder, field string, fields []string) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return malformed(err)
		}
		name := tok.(string) // an object's tokens alternate name, value
		if field == "" {
			if err := knownField(name, fields); err != nil {
				return err
			}
		}
		switch {
		case seen[name] && field == "":
			return invalid(name, "given twice")
		case seen[name]:
			return invalid(field, "%q given twice", name)
		}
		seen[name] = true
		if err := checkValue(dec, cmp.Or(field, name)); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return malformed(err)
}

func knownField(name string, fields []string) error {
	if slices.Contains(fields, name) {
		return nil
	}
	for _, f := range fields {
		if strings.EqualFold(f, name) {
			return invalid(name, "unknown field (field names are lower case: %q)", f)
		}
	}
	return invalid(name, "unknown field")
}

// checkValue reads one value, checking the objects in it.
func checkValue(dec *json.Decoder, field string) error {
	tok, err := dec.Token()
	if err != nil {
		return malformed(err)
	}
	switch tok {
	case json.Delim('{'):
		return checkMembers(dec, field, nil)
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
// decoded alone until one fails.
func decodeError(data []byte, err error) error {
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) == nil {
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			one, _ := json.Marshal(map[string]json.RawMessage{k: fields[k]})
			var j Job
			if e := json.Unmarshal(one, &j); e != nil {
				var te *json.UnmarshalTypeError
				if errors.As(e, &te) {
					return invalid(k, "want a JSON %s, got %s", te.Type.Kind(), te.Value)
				}
				return invalid(k, "%s", strings.TrimPrefix(e.Error(), "json: "))
			}
		}
	}
	return fmt.Errorf("%w job: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "json: "))
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
