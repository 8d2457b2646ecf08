package httpapi

import (
	"reflect"
	"testing"
	"time"

	"github.com/Mk-Chan/procman"
)

// appendStatus writes what encoding/json writes, for a status with every
// field set (a field added to Status but not to appendStatus fails here),
// with each field in turn left zero, and with nothing set. A string that
// needs escaping and a time json refuses leave the status to json.
func TestAppendStatusIsJSONs(t *testing.T) {
	full := fill(t, reflect.TypeFor[procman.Status]()).Interface().(procman.Status)
	cases := map[string]procman.Status{"every field": full, "none": {}}
	for i := range reflect.TypeFor[procman.Status]().NumField() {
		st := full
		f := reflect.ValueOf(&st).Elem().Field(i)
		f.SetZero()
		cases["no "+reflect.TypeFor[procman.Status]().Field(i).Name] = st
	}
	lr := *full.LastRun
	lr.ExitCode, lr.Signal, lr.Success = nil, "", false
	st := full
	st.LastRun = &lr
	cases["a bare last run"] = st
	for name, st := range cases {
		want, err := marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendStatus(nil, &st)
		if !ok || string(got) != string(want) {
			t.Errorf("%s: appendStatus gave (ok %v)\n%s\njson gives\n%s", name, ok, got, want)
		}
	}
	for name, st := range map[string]procman.Status{
		"a quote":      {Name: "web", Error: `exec: "x": not found`},
		"a newline":    {Name: "web", HealthFailure: "exit 1\n"},
		"non-ASCII":    {Name: "web", LogFile: "logs/wéb/1.log"},
		"HTML":         {Name: "web", Error: "<b>&</b>"},
		"the year 1e4": {Name: "web", Since: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if _, ok := appendStatus(nil, &st); ok && name != "HTML" {
			t.Errorf("%s: appendStatus wrote it itself", name)
		}
		want, _ := marshal(st)
		if got := encodeJSON(st); string(got) != string(want) {
			t.Errorf("%s: encodeJSON gave\n%s\njson gives\n%s", name, got, want)
		}
	}
}

// appendBulk writes what encoding/json writes for a bulk action's results:
// full, bare, with an error, none at all; a string in one that needs
// escaping leaves them all to json.
func TestAppendBulkIsJSONs(t *testing.T) {
	full := fill(t, reflect.TypeFor[procman.Status]()).Interface().(procman.Status)
	cases := map[string][]bulkResult{
		"nil":   nil,
		"empty": {},
		"three": {
			{Name: "db", Status: full, Dependent: true, Error: "stop \"db\": x", Code: "conflict"},
			{Name: "web"},
			{Name: "api", Status: procman.Status{Name: "api", State: procman.StateStopped}, Error: "x"},
		},
	}
	for name, out := range cases {
		want, err := marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendBulk(nil, out)
		if !ok && name != "three" || string(encodeJSON(out)) != string(want) {
			t.Errorf("%s: appendBulk gave (ok %v)\n%s\njson gives\n%s", name, ok, got, want)
		}
	}
	plain := cases["three"]
	plain[0].Error = "x"
	want, _ := marshal(plain)
	if got, ok := appendBulk(nil, plain); !ok || string(got) != string(want) {
		t.Errorf("appendBulk gave (ok %v)\n%s\njson gives\n%s", ok, got, want)
	}
}

func BenchmarkBulkAnswer200(b *testing.B) {
	st := procman.Status{Name: "sleep-123", State: procman.StateStopped, Since: time.Now(), Restarts: 0, Host: "vm",
		LastRun: &procman.LastRun{ID: 3, Outcome: procman.OutcomeStopped, EndedAt: time.Now(), Signal: "terminated"}}
	out := make([]bulkResult, 200)
	for i := range out {
		out[i] = bulkResult{Name: st.Name, Status: st}
	}
	for b.Loop() {
		encodeJSON(out)
	}
}

// fill makes a value of type typ with every field, element and pointee set,
// to values that need no escaping.
func fill(t *testing.T, typ reflect.Type) reflect.Value {
	v := reflect.New(typ).Elem()
	switch {
	case typ == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 12, 1, 22, 31, 23, 575777377, time.UTC)))
		return v
	case typ.Kind() == reflect.Struct:
		for i := range typ.NumField() {
			v.Field(i).Set(fill(t, typ.Field(i).Type))
		}
	case typ.Kind() == reflect.Pointer:
		p := reflect.New(typ.Elem())
		p.Elem().Set(fill(t, typ.Elem()))
		v.Set(p)
	case typ.Kind() == reflect.Map:
		v.Set(reflect.MakeMap(typ))
		v.SetMapIndex(fill(t, typ.Key()), fill(t, typ.Elem()))
	case typ.Kind() == reflect.String:
		v.SetString("x-" + typ.Name())
	case typ.Kind() == reflect.Int || typ.Kind() == reflect.Int64:
		v.SetInt(-42)
	case typ.Kind() == reflect.Bool:
		v.SetBool(true)
	default:
		t.Fatalf("fill: no value for a %s: teach fill (and appendStatus) about it", typ)
	}
	return v
}
