package procman

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzDecodeJob feeds arbitrary bytes to DecodeJob and then Validate, the path
// every API request body takes. Neither may panic; every error must wrap
// ErrInvalid (the API maps it to 400); and a job that passes both must survive
// a round trip through encoding/json unchanged, with a name that is safe as a
// log folder. The seed corpus runs in every `go test`; fuzz it with
//
//	go test -run '^$' -fuzz '^FuzzDecodeJob$' -fuzztime 20s .
func FuzzDecodeJob(f *testing.F) {
	for _, seed := range []string{
		// Valid jobs of both types.
		`{"name":"test","command":"echo hello","type":"one_time","schedule":"reboot"}`,
		`{"name":"web","command":"while true; do date +%T; sleep 1; done","type":"continuous","schedule":"reboot","stop_timeout":"5s"}`,
		`{"name":"web","command":"sleep 100","type":"continuous","schedule":"manual","env":{"GREETING":"hi","EMPTY":""},
		  "stop_signal":"SIGINT","stop_timeout":"1500ms","backoff_initial":"100ms","backoff_max":"2m30s","min_uptime":"1s",
		  "max_retries":3,"keep_runs":5,"max_log_bytes":1048576,"max_run_log_bytes":65536,"dir":"/tmp"}`,
		`{"name":"a.b_c-9","command":"true","type":"one_time","schedule":"none"}`,
		`{"name":"x","command":"true","type":"one_time","schedule":""}`,
		// Schedules.
		`{"name":"tick","command":"echo tick","type":"one_time","schedule":"@every 1s"}`,
		`{"name":"tick","command":"echo tick","type":"one_time","schedule":"@every 1h30m","overlap":"queue"}`,
		`{"name":"backup","command":"echo backing up","type":"one_time","schedule":"CRON_TZ=Europe/Berlin 0 3 * * *","overlap":"restart"}`,
		`{"name":"backup","command":"echo b","type":"one_time","schedule":"CRON_TZ=Europe/Berlin"}`,
		`{"name":"backup","command":"echo b","type":"one_time","schedule":"TZ=UTC @daily"}`,
		`{"name":"c","command":"true","type":"continuous","schedule":"*/5 * * * *"}`,
		`{"name":"c","command":"true","type":"continuous","schedule":"*/5 * * * *","overlap":"skip"}`,
		`{"name":"x","command":"true","type":"one_time","schedule":"rebot"}`,
		`{"name":"x","command":"true","type":"one_time","schedule":"CRON_TZ=../../etc/passwd 0 3 * * *"}`,
		`{"name":"x","command":"true","type":"one_time","schedule":"@every -1s"}`,
		`{"name":"x","command":"true","type":"one_time","schedule":"0 0 30 2 *"}`,
		`{"name":"x","command":"true","schedule":"@every 1.5s"}`,
		`{"name":"x","command":"true","schedule":"TZ=UTC @every 500ms"}`,
		`{"name":"x","command":"true"}`,
		`{"name":"x","command":"true","env":{"A":"1","A":"2"}}`,
		`{"name":"x","command":"true","env":{"PROCMAN_JOB":"y"}}`,
		`{"name":"x","command":"true","type":"continuous","backoff_initial":"2562047h"}`,
		// Names.
		`{"name":"..","command":"true","type":"one_time"}`,
		`{"name":".hidden","command":"true","type":"one_time"}`,
		`{"name":"a/b","command":"true","type":"one_time"}`,
		`{"name":"a\nb","command":"true","type":"one_time"}`,
		`{"name":"ok\n","command":"true","type":"one_time"}`,
		`{"name":"` + strings.Repeat("n", 128) + `","command":"true","type":"one_time"}`,
		`{"name":"` + strings.Repeat("n", 129) + `","command":"true","type":"one_time"}`,
		`{"name":"héllo","command":"true","type":"one_time"}`,
		`{"NAME":"upper","Command":"true","TYPE":"one_time"}`,
		// Bad values.
		`{"name":"x","command":"a\u0000b","type":"one_time"}`,
		`{"name":"x","command":"  ","type":"one_time"}`,
		`{"name":"x","command":"true","type":"daily"}`,
		`{"name":"x","command":"true","type":"one_time","env":{"A=B":"c"}}`,
		`{"name":"x","command":"true","type":"one_time","env":{"":"c"}}`,
		`{"name":"x","command":"true","type":"one_time","env":{"A":"\u0000"}}`,
		`{"name":"x","command":"true","type":"one_time","stop_signal":"STOP"}`,
		`{"name":"x","command":"true","type":"one_time","stop_timeout":"-1s"}`,
		`{"name":"x","command":"true","type":"one_time","stop_timeout":10}`,
		`{"name":"x","command":"true","type":"one_time","stop_timeout":"10"}`,
		`{"name":"x","command":"true","type":"one_time","min_uptime":"1s"}`,
		`{"name":"x","command":"true","type":"continuous","backoff_initial":"2s","backoff_max":"1s"}`,
		`{"name":"x","command":"true","type":"one_time","overlap":"queue"}`,
		// Health checks and restart policies.
		`{"name":"db","command":"sleep 100","type":"continuous","restart":"on-failure","success_exit_codes":[0,3,255],
		  "health":{"exec":"pg_isready -q","interval":"5s","timeout":"2s","retries":3,"start_period":"30s"},"on_unhealthy":"restart"}`,
		`{"name":"web","command":"x","health":{"http":"https://[::1]:8443/health?deep=1"},"on_unhealthy":"ignore"}`,
		`{"name":"m","command":"x","restart":"on-failure","max_retries":3,"backoff_initial":"1s","success_exit_codes":[]}`,
		`{"name":"x","command":"x","health":{"tcp":"db:5432","tcp":"db:5433"}}`,
		`{"name":"x","command":"x","health":{"tcp":"db:5432","Interval":"1s"}}`,
		`{"name":"x","command":"x","health":{"tcp":"db:5432","interval":"0.5ms"}}`,
		`{"name":"x","command":"x","health":{"exec":"true","http":"http://h/"}}`,
		`{"name":"x","command":"x","health":{}}`,
		`{"name":"x","command":"x","health":null,"on_unhealthy":"ignore"}`,
		`{"name":"x","command":"x","health":[1]}`,
		`{"name":"x","command":"x","success_exit_codes":[256]}`,
		`{"name":"x","command":"x","success_exit_codes":[1.5]}`,
		`{"name":"x","command":"x","restart":"on-failure"}`,
		// Unknown fields, trailing data, nulls, huge numbers, wrong shapes.
		`{"name":"x","command":"true","type":"one_time","restart":"always"}`,
		`{"name":"x","command":"true","type":"one_time"} {}`,
		`{"name":"x","command":"true","type":"one_time"}garbage`,
		`{"name":"x","command":"true","type":"one_time"}` + "\n\t ",
		`{"name":"x","command":"true","type":"one_time","env":null,"stop_timeout":null,"max_retries":null}`,
		`{"name":null,"command":null,"type":null,"schedule":null}`,
		`null`,
		`[]`,
		`"job"`,
		`{}`,
		``,
		`{`,
		`{"name":"x","command":"true","type":"continuous","max_retries":99999999999999999999}`,
		`{"name":"x","command":"true","type":"continuous","max_retries":1e400}`,
		`{"name":"x","command":"true","type":"continuous","max_retries":1.5}`,
		`{"name":"x","command":"true","type":"continuous","max_log_bytes":9223372036854775807}`,
		`{"name":"x","command":"true","type":"continuous","max_log_bytes":-9223372036854775808}`,
		`{"name":"x","command":"true","type":"continuous","stop_timeout":"9999999999h"}`,
		`{"name":"x","command":"true","type":"continuous","stop_timeout":"2562047h47m16.854775807s"}`,
		`{"name":"x","command":"true","type":"one_time","env":{"A":1}}`,
		`{"name":"x","command":"true","type":"one_time","env":["A=1"]}`,
		`{"name":"x","name":"y","command":"true","type":"one_time"}`,
		"{\"name\":\"x\",\"command\":\"\xff\xfe\",\"type\":\"one_time\"}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := DecodeJob(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("DecodeJob(%q): error %v does not wrap ErrInvalid", data, err)
			}
			return
		}
		if err := j.Validate(); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate(%+v): error %v does not wrap ErrInvalid", j, err)
			}
			return
		}
		checkName(t, j.Name)
		if isCron(j.Schedule) {
			sched, err := parseCron(j.Schedule)
			if err != nil {
				t.Fatalf("schedule %q passed Validate but does not parse: %v", j.Schedule, err)
			}
			sched.Next(time.Now()) // what planLocked does with it
		}

		raw, err := json.Marshal(j)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", j, err)
		}
		back, err := DecodeJob(raw)
		if err != nil {
			t.Fatalf("re-decoding %s (from %q): %v", raw, data, err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("re-decoded %s no longer validates: %v", raw, err)
		}
		if !reflect.DeepEqual(normalized(back), normalized(j)) {
			t.Fatalf("round trip changed the job:\n input %q\n first %+v\n JSON  %s\n again %+v", data, j, raw, back)
		}
	})
}

// normalized treats an empty env (or list of success codes) like none:
// `"env":{}` decodes to an empty map, which omitempty then leaves out, so it
// comes back as nil. Both mean the same.
func normalized(j Job) Job {
	if len(j.Env) == 0 {
		j.Env = nil
	}
	if len(j.SuccessExitCodes) == 0 {
		j.SuccessExitCodes = nil
	}
	return j
}

// checkName checks the documented name rule independently of the regexp:
// 1-128 of [A-Za-z0-9._-], not starting with '.'. Such a name is a single path
// element that is neither "." nor "..": it cannot leave the log folder.
func checkName(t *testing.T, name string) {
	t.Helper()
	if len(name) < 1 || len(name) > 128 {
		t.Fatalf("name %q of length %d passed Validate", name, len(name))
	}
	if name[0] == '.' {
		t.Fatalf("name %q starting with '.' passed Validate", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			t.Fatalf("name %q with byte %q passed Validate", name, c)
		}
	}
	if strings.Contains(name, "/") || name == ".." || name == "." {
		t.Fatalf("name %q is not a single safe path element", name)
	}
}

// FuzzParseDocument feeds arbitrary bytes to ParseDocument, as POST /apply
// and the jobs file do, in either format. It may not panic; every error
// must wrap ErrInvalid and say where, with a line inside the text; and a
// document it takes must come back the same through Marshal, in both
// formats. The seed corpus runs in every `go test`; fuzz it with
//
//	go test -run '^$' -fuzz '^FuzzParseDocument$' -fuzztime 20s .
func FuzzParseDocument(f *testing.F) {
	for _, seed := range []string{
		stackYAML, stackJSON, "jobs: {}\n", `{"jobs": {}}`, "",
		"jobs:\n  web:\n    command: |\n      echo a\n      echo b\n    env: {A: '1', B: \"yes\"}\n",
		"x-d: &d {stop_timeout: 5s}\njobs:\n  a: {<<: *d, command: x}\n  b: {<<: [*d], command: y, type: continuous}\n",
		"jobs:\n  web: {command: a, colour: red}\n  web: {command: b}\n",
		"jobs:\n  a: {command: !!str 1, max_retries: !!int '3', type: continuous}\n",
		"jobs:\n  a: {command: x, env: {A: *nope}}\n",
		"x-d: &d\n  web:\n    <<: *d\n    command: a\njobs: {}\n",
		"jobs: &j {a: {command: x}, b: *j}\n",
		"jobs:\n  a: {command: \"\\x1b[31m\\u202e\", schedule: '@every 1s', overlap: queue}\n",
		"%YAML 1.2\n---\njobs: {}\n...\n",
		"jobs: {}\n---\njobs: {}\n",
		`{"jobs": {"a": {"command": "x", "env": {"A": "1", "A": "2"}}}}`,
		`{"jobs": {"a": {"command": "x"}}} trailing`,
		"{\"jobs\": {\"a\": {\"command\": \"\xff\"}}}",
		"jobs:\n  a:\n    command: \xff\n",
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		format := YAML
		if isJSON {
			format = JSON
		}
		doc, err := ParseDocument(data, format)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseDocument(%q): %v does not wrap ErrInvalid", data, err)
			}
			lines := 1 // at most: YAML also breaks lines at \r, NEL, LS and PS
			for _, brk := range []string{"\n", "\r", "\u0085", "\u2028", "\u2029"} {
				lines += strings.Count(string(data), brk)
			}
			for _, fe := range FieldErrors(err) {
				if fe.Line < 0 || fe.Line > lines {
					t.Fatalf("ParseDocument(%q): %v: line %d of a text of %d lines", data, fe, fe.Line, lines)
				}
			}
			if len(FieldErrors(err)) == 0 {
				t.Fatalf("ParseDocument(%q): %v names no problem", data, err)
			}
			return
		}
		for _, j := range doc.Jobs {
			checkName(t, j.Name)
		}
		for _, f := range []Format{YAML, JSON} {
			text, err := doc.Marshal(f)
			if err != nil {
				t.Fatalf("Marshal(%s) of %q: %v", f, data, err)
			}
			back, err := ParseDocument(text, f)
			if err != nil {
				t.Fatalf("%s written from %q does not read back: %v\n%s", f, data, err, text)
			}
			if !reflect.DeepEqual(normalizedAll(back.Jobs), normalizedAll(doc.Jobs)) {
				t.Fatalf("%s round trip changed the jobs of %q:\n%+v\n%s\n%+v", f, data, doc.Jobs, text, back.Jobs)
			}
		}
	})
}

func normalizedAll(jobs []Job) []Job {
	out := make([]Job, len(jobs))
	for i, j := range jobs {
		out[i] = normalized(j)
	}
	return out
}
