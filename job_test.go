package procman

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDecodeJob(t *testing.T) {
	j, err := DecodeJob([]byte(`{"name":"web","command":"sleep 1","type":"continuous","schedule":"reboot",
		"stop_timeout":"3s","backoff_initial":"250ms","env":{"A":"1"},"max_retries":4}`))
	if err != nil {
		t.Fatal(err)
	}
	if j.StopTimeout != Duration(3*time.Second) || j.BackoffInitial != Duration(250*time.Millisecond) || j.Env["A"] != "1" || j.MaxRetries != 4 {
		t.Fatalf("decoded %+v", j)
	}
	if err := j.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeJobRejects(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"name":"a","command":"x","type":"one_time","colour":"red"}`, "colour: unknown field"},
		{`{"name":"a","command":"x","type":"one_time"} {}`, "trailing data"},
		{`{"name":"a","command":"x","type":"continuous","stop_timeout":"10 parsecs"}`, "stop_timeout"},
		{`{"name":"a","command":"x","type":"continuous","stop_timeout":10}`, "stop_timeout"},
		{`{"name":7}`, "name"},
		{`{"name":"a",`, "unexpected EOF"},
	} {
		_, err := DecodeJob([]byte(tc.body))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("DecodeJob(%s) = %v, want ErrInvalid mentioning %q", tc.body, err, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Job{Name: "web-1.a_b", Command: "true", Type: OneTime}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 128)
	if err := (Job{Name: long, Command: "true", Type: OneTime}).Validate(); err != nil {
		t.Fatalf("128-char name rejected: %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*Job)
	}{
		{"name", func(j *Job) { j.Name = "" }},
		{"name", func(j *Job) { j.Name = long + "a" }},
		{"name", func(j *Job) { j.Name = ".hidden" }},
		{"name", func(j *Job) { j.Name = ".." }},
		{"name", func(j *Job) { j.Name = "a/b" }},
		{"name", func(j *Job) { j.Name = "a b" }},
		{"command", func(j *Job) { j.Command = "  " }},
		{"command", func(j *Job) { j.Command = "a\x00b" }},
		{"type", func(j *Job) { j.Type = "sometimes" }},
		{"type", func(j *Job) { j.Type = "" }},
		{"schedule", func(j *Job) { j.Schedule = "rebot" }},
		{"env", func(j *Job) { j.Env = map[string]string{"A=B": "x"} }},
		{"stop_signal", func(j *Job) { j.StopSignal = "SIGFOO" }},
		{"stop_timeout", func(j *Job) { j.StopTimeout = -1 }},
		{"backoff_initial", func(j *Job) { j.BackoffInitial = Duration(time.Second) }},
		{"max_retries", func(j *Job) { j.Type = Continuous; j.MaxRetries = -1 }},
		{"backoff_max", func(j *Job) {
			j.Type = Continuous
			j.BackoffInitial, j.BackoffMax = Duration(time.Minute), Duration(time.Second)
		}},
	} {
		j := ok
		tc.edit(&j)
		err := j.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: got %v, want a FieldError on %s", j, err, tc.field)
		}
	}
}

func TestScheduleErrorNamesAccepted(t *testing.T) {
	err := Job{Name: "a", Command: "x", Type: OneTime, Schedule: "rebot"}.Validate()
	for _, want := range []string{`"rebot"`, "reboot", "manual", "none", "cron", "@every"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	for _, s := range []string{"", "manual", "none", "reboot", "*/5 * * * *", "@hourly", "@daily", "@every 90s",
		"CRON_TZ=Europe/Berlin 0 3 * * *", "TZ=UTC 30 2 * * 1-5"} {
		if err := (Job{Name: "a", Command: "x", Type: OneTime, Schedule: s}).Validate(); err != nil {
			t.Errorf("schedule %q: %v", s, err)
		}
	}
}

func TestBadSchedules(t *testing.T) {
	for _, s := range []string{"rebot", "* * *", "61 * * * *", "@fortnightly", "@every", "@every soon",
		"CRON_TZ=Mars/Olympus 0 3 * * *", "CRON_TZ=Europe/Berlin", "TZ=", "0 3 * * * *"} {
		err := Job{Name: "a", Command: "x", Type: OneTime, Schedule: s}.Validate()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "schedule" {
			t.Errorf("schedule %q: %v", s, err)
		}
	}
}

func TestOverlapValidation(t *testing.T) {
	for _, tc := range []struct {
		j  Job
		ok bool
	}{
		{Job{Type: OneTime, Schedule: "@every 1s", Overlap: OverlapQueue}, true},
		{Job{Type: OneTime, Schedule: "@every 1s", Overlap: "sometimes"}, false},
		{Job{Type: OneTime, Schedule: "reboot", Overlap: OverlapSkip}, false},
		{Job{Type: Continuous, Schedule: "@every 1s", Overlap: OverlapRestart}, false},
	} {
		tc.j.Name, tc.j.Command = "a", "true"
		if err := tc.j.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.j, err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for _, s := range []string{"TERM", "SIGTERM", "int", "SigHup", "KILL", "USR1", "QUIT", "USR2"} {
		if _, err := parseSignal(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}
