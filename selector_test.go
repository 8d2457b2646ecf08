package procman

import (
	"errors"
	"strings"
	"testing"
)

func TestLabelsValidate(t *testing.T) {
	long := strings.Repeat("a", 63)
	ok := Job{Name: "web", Command: "true", Labels: map[string]string{"tier": "web", "app.kubernetes.io/name": long,
		"a_b.c-d": "", "x": "A1-b_c.d", "example.com/" + long: "v"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ key, value, want string }{
		{"", "v", "a key must not be empty"},
		{long + "a", "v", "64 characters, at most 63"},
		{"tier", long + "a", "64 characters, at most 63"},
		{"ti er", "v", "letters, digits"},
		{"tier", "we b", "letters, digits"},
		{"-tier", "v", "beginning and ending"},
		{"tier", "web-", "beginning and ending"},
		{"tier", "wéb", "letters, digits"},
		{"/tier", "v", "prefix before '/' must not be empty"},
		{"Example.com/tier", "v", "DNS subdomain"},
		{"a/b/c", "v", "letters, digits"},
		{"example.com/", "v", "the name must not be empty"},
		{strings.Repeat("a", 254) + "/x", "v", "254 characters, at most 253"},
	} {
		j := Job{Name: "web", Command: "true", Labels: map[string]string{tc.key: tc.value}}
		fes := FieldErrors(j.Validate())
		if len(fes) != 1 || fes[0].Field != "labels" || !strings.Contains(fes[0].Msg, tc.want) {
			t.Errorf("labels {%q: %q}: %v, want one error of labels saying %q", tc.key, tc.value, fes, tc.want)
		}
	}
}

func TestDecodeLabels(t *testing.T) {
	j, err := DecodeJob([]byte(`{"name":"web","command":"true","labels":{"tier":"web"}}`))
	if err != nil || j.Labels["tier"] != "web" {
		t.Fatalf("DecodeJob: %+v, %v", j, err)
	}
	for _, body := range []string{`{"name":"web","command":"true","labels":{"tier":1}}`,
		`{"name":"web","command":"true","labels":["tier"]}`,
		`{"name":"web","command":"true","labels":{"tier":"a","tier":"b"}}`} {
		_, err := DecodeJob([]byte(body))
		if fes := FieldErrors(err); len(fes) != 1 || fes[0].Field != "labels" {
			t.Errorf("DecodeJob(%s) = %v, want an error of labels", body, err)
		}
	}
	if j, _ := DecodeJob([]byte(`{"name":"web","command":"true","labels":{}}`)); j.Labels != nil {
		t.Errorf("empty labels stored as %#v, want none", j.Labels)
	}
}

func TestSelectorMatches(t *testing.T) {
	web := map[string]string{"tier": "web", "canary": ""}
	db := map[string]string{"tier": "db", "example.com/team": "core"}
	for _, tc := range []struct {
		sel     string
		web, db bool
	}{
		{"tier=web", true, false},
		{"tier==web", true, false},
		{" tier = web ", true, false},
		{"tier!=web", false, true},
		{"team!=core", true, true}, // no such key: != holds
		{"canary", true, false},
		{"!canary", false, true},
		{"tier,!canary", false, true},
		{"tier=db,example.com/team=core", false, true},
		{"tier=web,tier=db", false, false},
		{"canary=", true, false},
		{"canary!=", false, true}, // a job without the key meets it
	} {
		s, err := ParseSelector(tc.sel)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tc.sel, err)
			continue
		}
		if s.Matches(web) != tc.web || s.Matches(db) != tc.db {
			t.Errorf("%q matches web %v, db %v; want %v, %v", tc.sel, s.Matches(web), s.Matches(db), tc.web, tc.db)
		}
		again, err := ParseSelector(s.String())
		if err != nil || again.String() != s.String() {
			t.Errorf("%q written as %q reads back as %q, %v", tc.sel, s, again, err)
		}
	}
	if !AllJobs().Matches(nil) || (Selector{}).Matches(web) {
		t.Error("AllJobs must match every job, the zero Selector none")
	}
}

func TestParseSelectorRejects(t *testing.T) {
	for _, tc := range []struct{ sel, want string }{
		{"", "it is empty"},
		{"  ", "it is empty"},
		{"tier=web,", "term 2: empty term"},
		{"a,,b", "term 2: empty term"},
		{"=web", "a key must not be empty"},
		{"tier=web=x", "use key=value"},
		{"!tier=web", "use key=value"},
		{"ti!er", "use key=value"},
		{"tier=" + strings.Repeat("w", 64), "64 characters, at most 63"},
		{"tier=we b", "letters, digits"},
		{"Bad.Prefix/x", "DNS subdomain"},
	} {
		_, err := ParseSelector(tc.sel)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseSelector(%q) = %v, want ErrInvalid saying %q", tc.sel, err, tc.want)
		}
	}
}
