package procman

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const stackYAML = `# a small stack
x-defaults: &defaults
  stop_timeout: 5s
  env:
    LOG: info

jobs:
  db:
    <<: *defaults
    command: exec sleep 100
    type: continuous
    schedule: reboot
  web:
    <<: *defaults
    command: |
      echo starting
      exec sleep 100
    type: continuous
    env: {LOG: debug, PORT: "8080"}
  nightly:
    command: echo backup
    schedule: "0 3 * * *"
`

const stackJSON = `{
  "jobs": {
    "db": {"command": "exec sleep 100", "type": "continuous", "schedule": "reboot",
           "stop_timeout": "5s", "env": {"LOG": "info"}},
    "web": {"command": "echo starting\nexec sleep 100\n", "type": "continuous",
            "env": {"LOG": "debug", "PORT": "8080"}, "stop_timeout": "5s"},
    "nightly": {"command": "echo backup", "schedule": "0 3 * * *"}
  }
}`

// TestParseDocument: the same jobs in YAML (with an anchor and merge keys
// under an x- key) and in JSON read as the same definitions, in the order
// of the file, one_time where no type is given.
func TestParseDocument(t *testing.T) {
	want := []Job{
		{Name: "db", Command: "exec sleep 100", Type: Continuous, Schedule: "reboot", StopTimeout: dur(5 * time.Second), Env: map[string]string{"LOG": "info"}},
		{Name: "web", Command: "echo starting\nexec sleep 100\n", Type: Continuous, StopTimeout: dur(5 * time.Second), Env: map[string]string{"LOG": "debug", "PORT": "8080"}},
		{Name: "nightly", Command: "echo backup", Type: OneTime, Schedule: "0 3 * * *"},
	}
	for _, tc := range []struct {
		format Format
		text   string
	}{{YAML, stackYAML}, {JSON, stackJSON}, {YAML, stackJSON}} {
		doc, err := ParseDocument([]byte(tc.text), tc.format)
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if !reflect.DeepEqual(doc.Jobs, want) {
			t.Errorf("%s: got\n%+v\nwant\n%+v", tc.format, doc.Jobs, want)
		}
	}
	if doc, err := ParseDocument([]byte("jobs: {}\n"), YAML); err != nil || len(doc.Jobs) != 0 {
		t.Errorf("jobs: {}: %+v, %v; want no jobs", doc, err)
	}
}

// problem is a FieldError as a test names it: job, field, line.
type problem struct {
	job, field string
	line       int
}

func problemsOf(err error) []problem {
	var out []problem
	for _, fe := range FieldErrors(err) {
		out = append(out, problem{fe.Job, fe.Field, fe.Line})
	}
	return out
}

// TestParseDocumentErrors: every problem of a document is reported, each
// with its job, field and line, and wraps ErrInvalid.
func TestParseDocumentErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format Format
		text   string
		want   []problem
		msg    string // in the first problem's message
	}{
		{"not YAML", YAML, "jobs:\n  web: [\n", []problem{{"", "", 2}}, "not YAML"},
		{"a tab", YAML, "jobs:\n\tweb: {}\n", []problem{{"", "", 2}}, "not YAML"},
		{"not JSON", JSON, "{\"jobs\": {\n\"web\": }\n}", []problem{{"", "", 2}}, "not JSON"},
		{"JSON with trailing data", JSON, `{"jobs": {}} {}`, []problem{{"", "", 1}}, "trailing data"},
		{"empty", YAML, "", []problem{{"", "", 1}}, "empty"},
		{"only a comment", YAML, "# nothing\n", []problem{{"", "", 1}}, "empty"},
		{"two documents", YAML, "jobs: {}\n---\njobs: {}\n", []problem{{"", "", 2}}, "second document"},
		{"a list", YAML, "- web\n", []problem{{"", "", 1}}, "mapping with the key jobs"},
		{"no jobs", YAML, "x-a: 1\n", []problem{{"", "jobs", 1}}, "declares no jobs"},
		{"jobs null", YAML, "jobs:\n", []problem{{"", "jobs", 1}}, "jobs: {}"},
		{"unknown keys", YAML, "version: 2\njobs: {}\nservices: {}\n", []problem{{"", "version", 1}, {"", "services", 3}}, "unknown key"},
		{"jobs twice", JSON, `{"jobs": {}, "jobs": {}}`, []problem{{"", "jobs", 1}}, "given twice"},
		{"a job twice", YAML, "jobs:\n  web: {command: a}\n  db: {command: b}\n  web: {command: c}\n", []problem{{"web", "", 4}}, "first at line 2"},
		{"a job twice in JSON", JSON, "{\"jobs\": {\n\"web\": {\"command\": \"a\"},\n\"web\": {\"command\": \"b\"}}}", []problem{{"web", "", 3}}, "defined twice"},
		{"a job that is no mapping", YAML, "jobs:\n  web: echo hi\n", []problem{{"web", "", 2}}, "want a mapping"},
		{"unknown and misspelt fields", YAML, "jobs:\n  web:\n    command: a\n    colour: red\n    Type: continuous\n",
			[]problem{{"web", "colour", 4}, {"web", "Type", 5}}, "unknown field"},
		{"a field twice", YAML, "jobs:\n  web:\n    command: a\n    command: b\n", []problem{{"web", "command", 4}}, "first at line 3"},
		{"an env variable twice", YAML, "jobs:\n  web:\n    command: a\n    env:\n      A: '1'\n      A: '2'\n", []problem{{"web", "env", 4}}, `"A" given twice`},
		{"wrong types", YAML, "jobs:\n  web:\n    command: a\n    type: continuous\n    max_retries: lots\n    stop_timeout: 5\n    env: {PORT: 8080}\n",
			[]problem{{"web", "max_retries", 5}, {"web", "stop_timeout", 6}, {"web", "env", 7}}, "want a whole number, got string"},
		{"jobs that fail validation", YAML, "jobs:\n  web:\n    command: ''\n    schedule: rebot\n  ok:\n    command: true\n  db:\n    command: x\n    stop_signal: NOPE\n",
			[]problem{{"web", "command", 3}, {"web", "schedule", 4}, {"ok", "command", 6}, {"db", "stop_signal", 9}}, "must not be empty"},
		{"a bad name", YAML, "jobs:\n  .hidden:\n    command: a\n", []problem{{".hidden", "name", 2}}, "letters, digits"},
		{"a name that is not the key", YAML, "jobs:\n  web:\n    name: other\n    command: a\n", []problem{{"web", "name", 3}}, "the job's key"},
		{"a missing command", YAML, "jobs:\n  web:\n    type: continuous\n", []problem{{"web", "command", 2}}, "must not be empty"},
		{"a custom tag", YAML, "jobs:\n  web:\n    command: !secret x\n", []problem{{"web", "command", 3}}, "tag !secret"},
		{"a merge of a scalar", YAML, "jobs:\n  web:\n    <<: 1\n    command: a\n", []problem{{"web", "", 3}}, "merges mappings"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDocument([]byte(tc.text), tc.format)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%v, want ErrInvalid", err)
			}
			if got := problemsOf(err); !slices.Equal(got, tc.want) {
				t.Errorf("problems %+v, want %+v\n%v", got, tc.want, err)
			}
			if fes := FieldErrors(err); len(fes) == 0 || !strings.Contains(fes[0].Msg, tc.msg) {
				t.Errorf("first problem %v, want it to say %q", err, tc.msg)
			}
		})
	}
}

// TestParseDocumentAliasBomb: aliases that nest into billions of values are
// refused, quickly, instead of being expanded.
func TestParseDocumentAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&b, "x-%d: &a%d [", i, i)
		for k := range 10 {
			if k > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*a%d", i-1)
		}
		b.WriteString("]\n")
	}
	b.WriteString("jobs:\n  web:\n    command: a\n    env: {A: *a9}\n")
	_, err := ParseDocument([]byte(b.String()), YAML)
	if fes := FieldErrors(err); len(fes) != 1 || !strings.Contains(fes[0].Msg, "expands to more than") {
		t.Fatalf("%v, want the document refused for its size", err)
	}
}

// TestParseDocumentRecursiveAlias: an alias inside the value it names, by
// a merge key or as a value, is refused where the alias is, instead of
// being followed for ever (a stack overflow, which ends the process).
func TestParseDocumentRecursiveAlias(t *testing.T) {
	for _, tc := range []struct {
		text string
		want problem
	}{
		{"x-d: &d\n  web:\n    <<: *d\n    command: a\njobs: {}\n", problem{"", "", 3}},
		{"x-d: &d\n  a: [b, *d]\njobs: {}\n", problem{"", "", 2}},
		{"jobs: &d\n  web:\n    <<: [*d]\n    command: a\n", problem{"web", "", 3}},
		{"jobs:\n  web: &w\n    command: a\n    env: {A: *w}\n", problem{"web", "env", 4}},
	} {
		_, err := ParseDocument([]byte(tc.text), YAML)
		if got := problemsOf(err); !slices.Equal(got, []problem{tc.want}) || !strings.Contains(err.Error(), "inside the value it names") {
			t.Errorf("%q: %v (%+v), want the alias refused at %+v", tc.text, err, got, tc.want)
		}
	}
}

// trickyStrings are values YAML would read as something else unless
// quoted, or whose form a writer must keep.
var trickyStrings = []string{"yes", "on", "8080", "1e3", "0x10", "~", "null", "", " lead", "trail ", "a: b",
	"#x", "- x", "'q'", `"dq"`, "true", "2026-01-01", "multi\nline\n", "multi\nline", "a\n  b\n", "  indented\nx",
	"trailing\n\n", "\ttab", "x\r\ny", "☃", "\x1b[31m", "\u202e", "{a: b}", "[1]", "*alias", "&anchor", "!tag", "%x", "@x", "`x"}

// TestDocumentRoundTrip: a document written in either format reads back as
// the same jobs, whatever their strings hold, with every field a job can
// have set (fullJob; TestFullJobSetsEveryField keeps it complete).
func TestDocumentRoundTrip(t *testing.T) {
	jobs := []Job{fullJob("full", "/srv/app"), {Name: "once", Command: "echo hi", Type: OneTime, Schedule: "@hourly", Overlap: OverlapQueue}}
	env := map[string]string{}
	for i, s := range trickyStrings {
		env[fmt.Sprintf("V%02d", i)] = s
		jobs = append(jobs, Job{Name: fmt.Sprintf("s%02d", i), Command: "echo " + s, Type: OneTime, Dir: s})
	}
	jobs[0].Env = env
	for _, f := range []Format{YAML, JSON} {
		text, err := Document{Jobs: jobs}.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := ParseDocument(text, f)
		if err != nil {
			t.Fatalf("%s: %v\n%s", f, err, text)
		}
		if !reflect.DeepEqual(doc.Jobs, jobs) {
			t.Errorf("%s: read back\n%+v\nwrote\n%+v\n%s", f, doc.Jobs, jobs, text)
		}
	}
	if text, _ := (Document{}).Marshal(YAML); string(text) != "jobs: {}\n" {
		t.Errorf("no jobs: %q, want jobs: {}", text)
	}
}

// TestDocumentYAMLReadsWell: the YAML written for a job is what a person
// would write: fields in the API's order, no name, strings unquoted where
// they can be, a multi-line command as a block.
func TestDocumentYAMLReadsWell(t *testing.T) {
	text, err := Document{Jobs: []Job{{Name: "web", Command: "cd /srv\nexec ./web\n", Type: Continuous, Schedule: "reboot",
		Env: map[string]string{"PORT": "8080"}, StopTimeout: dur(5 * time.Second)}}}.Marshal(YAML)
	if err != nil {
		t.Fatal(err)
	}
	want := `jobs:
  web:
    command: |
      cd /srv
      exec ./web
    type: continuous
    schedule: reboot
    env:
      PORT: "8080"
    stop_timeout: 5s
`
	if string(text) != want {
		t.Errorf("got\n%s\nwant\n%s", text, want)
	}
}
