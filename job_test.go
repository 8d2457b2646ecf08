package procman

import (
	"errors"
	"slices"
	"strconv"
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

// TestDecodeJobIsStrict: names match exactly, once, in one object.
func TestDecodeJobIsStrict(t *testing.T) {
	for _, tc := range []struct{ body, field, want string }{
		{`{"NAME":"upper","command":"true"}`, "NAME", `lower case: "name"`},
		{`{"name":"a","Command":"true"}`, "Command", `"command"`},
		{`{"name":"x","name":"y","command":"true"}`, "name", "given twice"},
		{`{"name":"a","command":"true","env":{"A":"1","A":"2"}}`, "env", `"A" given twice`},
		{`{"name":"a","command":"true","colour":null}`, "colour", "unknown field"},
	} {
		_, err := DecodeJob([]byte(tc.body))
		fe := FieldErrors(err)
		if !errors.Is(err, ErrInvalid) || len(fe) != 1 || fe[0].Field != tc.field || !strings.Contains(fe[0].Msg, tc.want) {
			t.Errorf("DecodeJob(%s) = %v, want a FieldError on %s saying %q", tc.body, err, tc.field, tc.want)
		}
	}
	for _, body := range []string{`null`, `[]`, `"job"`, ``, `{"name":"a"`, `{"name":"a"}}`} {
		if _, err := DecodeJob([]byte(body)); !errors.Is(err, ErrInvalid) {
			t.Errorf("DecodeJob(%s) = %v, want ErrInvalid", body, err)
		}
	}
	// A null duration is the default, as an absent one is.
	if j, err := DecodeJob([]byte(`{"name":"a","command":"true","stop_timeout":null}`)); err != nil || j.StopTimeout != 0 {
		t.Errorf("null stop_timeout: %+v %v", j, err)
	}
}

// TestValidateReportsEveryProblem: one FieldError per problem, so that a form
// can show them all at once.
func TestValidateReportsEveryProblem(t *testing.T) {
	err := Job{Name: ".x", Command: " ", Schedule: "rebot", StopTimeout: -1, KeepRuns: -1}.Validate()
	var fields []string
	for _, fe := range FieldErrors(err) {
		fields = append(fields, fe.Field)
	}
	if want := []string{"name", "command", "schedule", "stop_timeout", "keep_runs"}; !slices.Equal(fields, want) {
		t.Errorf("Validate reported %q (%v), want %q", fields, err, want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("%v does not wrap ErrInvalid", err)
	}
}

// TestDurationBounds: every duration field is bounded, and the error says the bound.
func TestDurationBounds(t *testing.T) {
	huge := Duration(2562047 * time.Hour)
	for _, tc := range []struct {
		field, bound string
		edit         func(*Job, Duration)
		max          time.Duration
	}{
		{"stop_timeout", "1h", func(j *Job, d Duration) { j.StopTimeout = d }, MaxStopTimeout},
		{"backoff_initial", "24h", func(j *Job, d Duration) { j.BackoffInitial = d }, MaxBackoff},
		{"backoff_max", "24h", func(j *Job, d Duration) { j.BackoffMax = d }, MaxBackoff},
		{"min_uptime", "24h", func(j *Job, d Duration) { j.MinUptime = d }, MaxMinUptime},
	} {
		j := Job{Name: "a", Command: "true", Type: Continuous}
		tc.edit(&j, Duration(tc.max))
		if err := j.Validate(); err != nil {
			t.Errorf("%s at its bound %s: %v", tc.field, tc.max, err)
		}
		for _, d := range []Duration{Duration(tc.max + time.Nanosecond), huge, -1} {
			tc.edit(&j, d)
			fe := FieldErrors(j.Validate())
			if len(fe) != 1 || fe[0].Field != tc.field || !strings.Contains(fe[0].Msg, "up to "+tc.bound) {
				t.Errorf("%s %s: %v, want a FieldError saying the bound %s", tc.field, time.Duration(d), fe, tc.bound)
			}
		}
	}
	if _, err := (Config{BackoffInitial: time.Duration(huge)}).withDefaults(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Config.BackoffInitial %s: %v, want ErrInvalid", time.Duration(huge), err)
	}
}

// TestIntervalsAndSchedulesThatCannotWork: an @every that is not a whole
// number of seconds of at least 1s, or a date that never comes, is refused.
func TestIntervalsAndSchedulesThatCannotWork(t *testing.T) {
	for _, tc := range []struct{ sched, want string }{
		{"@every 0s", "at least 1s"}, {"@every 1ms", "at least 1s"}, {"@every -5s", "at least 1s"},
		{"@every 1.5s", "whole number of seconds"}, {"CRON_TZ=UTC @every 500ms", "at least 1s"},
		{"0 0 30 2 *", "never fires"}, {"0 0 31 4 *", "never fires"},
	} {
		fe := FieldErrors(Job{Name: "a", Command: "true", Schedule: tc.sched}.Validate())
		if len(fe) != 1 || fe[0].Field != "schedule" || !strings.Contains(fe[0].Msg, tc.want) {
			t.Errorf("schedule %q: %v, want a FieldError saying %q", tc.sched, fe, tc.want)
		}
	}
	for _, s := range []string{"@every 1s", "@every 2m30s", "0 0 29 2 *", "CRON_TZ=UTC @every 1h"} {
		if err := (Job{Name: "a", Command: "true", Schedule: s}).Validate(); err != nil {
			t.Errorf("schedule %q: %v", s, err)
		}
	}
}

// TestCommandWithinTheKernelsLimit: the longest command the kernel passes is
// accepted and runs; one byte more is refused, naming the limit.
func TestCommandWithinTheKernelsLimit(t *testing.T) {
	limit := maxArgLen() - 1 // bytes, without the NUL
	long := ": " + strings.Repeat("x", limit-2-len(";echo ok")) + ";echo ok"
	fe := FieldErrors(Job{Name: "a", Command: long + " ", Type: OneTime}.Validate())
	if len(fe) != 1 || fe[0].Field != "command" || !strings.Contains(fe[0].Msg, strconv.Itoa(limit)) {
		t.Errorf("a %d-byte command: %v, want a FieldError naming the limit %d", len(long)+1, fe, limit)
	}
	fe = FieldErrors(Job{Name: "a", Command: "true", Env: map[string]string{"BIG": strings.Repeat("x", limit)}}.Validate())
	if len(fe) != 1 || fe[0].Field != "env" {
		t.Errorf("a variable over the limit: %v, want a FieldError on env", fe)
	}
	w := setup(t)
	if got := w.runOnce(Job{Name: "long", Command: long}); got != "ok\n" {
		t.Errorf("the %d-byte command printed %q", len(long), got)
	}
}
