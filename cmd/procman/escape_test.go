package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain text, ünïcode ✓":   "plain text, ünïcode ✓",
		"red \x1b[31mtext\x1b[0m": `red \x1b[31mtext\x1b[0m`,
		"title \x1b]0;pwned\x07":  `title \x1b]0;pwned\x07`,
		"a\tb\nc\rd\x7f":          `a\tb\nc\rd\x7f`,
		"c1 \u009b31m":            `c1 \u009b31m`,
		"bidi \u202eevil\u202c":   `bidi \u202eevil\u202c`,
		"bad \xff\xfe utf-8":      `bad \xff\xfe utf-8`,
		"a real \ufffd stays":     "a real \ufffd stays",
		"":                        "",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
	raw := []byte(`{"command":"x\u001b[31m` + "\u009b\u202e\x7f" + `","n":1}`)
	safe := jsonSafe(raw)
	if strings.ContainsAny(string(safe), "\u009b\u202e\x7f") {
		t.Errorf("jsonSafe left a raw control: %q", safe)
	}
	var a, b map[string]any
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(safe, &b); err != nil || a["command"] != b["command"] {
		t.Errorf("jsonSafe changed the JSON's meaning: %q (%v)", safe, err)
	}
}

// Job fields that hold terminal controls are printed escaped by every
// command that shows them; the JSON output keeps its meaning.
func TestCLIEscapesControlCharacters(t *testing.T) {
	dir := newDir(t)
	base, _ := startBinary(t, dir)
	evil := "echo \x1b]0;pwned\x07\x1b[2J\u009b31m\u202e\tdone"
	createJob(t, base, map[string]any{"name": "evil", "type": "one_time", "command": evil,
		"env": map[string]string{"X": "\x1b[31mred"}, "dir": "/nonexistent/\x1b[31m"})
	runCLI(t, nil, withAddr(base, []string{"start", "evil"})...) // fails: the dir is missing, and the error names it
	isClean := func(what, out string) {
		t.Helper()
		if strings.ContainsAny(out, "\x1b\x07\u009b\u202e") {
			t.Errorf("%s printed a raw control character:\n%q", what, out)
		}
	}
	show := pm(t, base, "show", "evil")
	isClean("show", show)
	wantContains(t, "show", show, `error:      dir "/nonexistent/\x1b[31m"`, `echo \x1b]0;pwned\x07\x1b[2J\u009b31m\u202e\tdone`, `X=\x1b[31mred`)
	for _, args := range [][]string{{"ls"}, {"state", "evil"}, {"runs", "evil"}, {"show", "evil", "-o", "json"}, {"ls", "-o", "json"}} {
		r := runCLI(t, nil, withAddr(base, args)...)
		isClean(strings.Join(args, " "), r.stdout+r.stderr)
	}
	r := runCLI(t, nil, withAddr(base, []string{"show", "evil", "-o", "json"})...)
	var job struct{ Command string }
	if err := json.Unmarshal([]byte(r.stdout), &job); err != nil || job.Command != evil {
		t.Errorf("show -o json: %q %v", job.Command, err)
	}
}
