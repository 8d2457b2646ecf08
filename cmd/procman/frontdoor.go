package main

// The front door: what the first word of the command line makes of the
// binary (the server, or a client command), and the help that shows both.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// run runs the binary with its command line and returns the exit code. The
// first word that is not a flag decides: a client command (procman ls), the
// port or nothing (the server), "serve" (the server too), "help". Flags may
// come before it: procman -addr host:10000 ls.
func run(args []string, stdout, stderr io.Writer) int {
	fs, _ := serverFlags(io.Discard, io.Discard)
	at := firstWord(fs, args)
	if at < 0 || isDigits(args[at]) {
		return runServer(args, stdout, stderr)
	}
	word, around := args[at], slices.Concat(args[:at], args[at+1:])
	switch {
	case word == "serve":
		return runServer(around, stdout, stderr)
	case isClientCommand(word): // client.go; the flags before it are the command's
		return runClient(append([]string{word}, around...), stdout, stderr)
	}
	msg := fmt.Sprintf("unknown command %q", word)
	if s := suggest(word); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return exitCode(stderr, "procman", usageError{msg}, shortUsage)
}

// usageError is a command line that makes no sense: exit status 2, after its
// message (none when the flag package has said what is wrong) and the usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// errDone is a command line that asked for what is already done: the help
// or the version, printed. Exit status 0.
var errDone = errors.New("done")

// exitCode says what went wrong, after prefix ("procman", "procman logs"),
// and returns the exit status of err: 0 for nil and errDone; 2 for a
// usageError, its message followed by usage; 1 for any other error.
func exitCode(stderr io.Writer, prefix string, err error, usage func(io.Writer)) int {
	var ue usageError
	var status exitStatus
	switch {
	case err == nil, errors.Is(err, errDone):
		return 0
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &ue):
		if ue.msg != "" {
			fmt.Fprintf(stderr, "%s: %s\n", prefix, printable(ue.msg))
		}
		usage(stderr)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %s\n", prefix, printable(err.Error()))
	return 1
}

// clientGlobals are the flags every client command takes, which may also come
// before the command; each takes a value.
var clientGlobals = []string{"addr", "socket", "token-file", "ca-file", "o"}

// firstWord returns the index of the first argument that is neither a flag
// nor a flag's value, or -1. It knows which flags take a value from the
// server's flag set and clientGlobals; at an unknown flag it gives up (-1),
// and the server's flag parser reports it.
func firstWord(server *flag.FlagSet, args []string) int {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if i+1 < len(args) {
				return i + 1
			}
			return -1
		case len(a) < 2 || a[0] != '-':
			return i
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if f := server.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
		} else if !slices.Contains(clientGlobals, name) {
			return -1
		}
		if !hasValue {
			i++ // the flag's value
		}
	}
	return -1
}

// synonyms are words of other tools (pm2, supervisorctl, systemctl) and their
// ProcMan commands: edit distance alone would answer "edit" to "delete".
var synonyms = map[string]string{
	"list": "ls", "ps": "ls", "status": "state", "stat": "state", "delete": "rm", "del": "rm", "remove": "rm",
	"create": "add", "new": "add", "log": "logs", "tail": "logs", "history": "runs", "describe": "show",
	"info": "show", "get": "show", "update": "edit", "set": "edit", "reload": "restart", "watch": "events",
	"monit": "events", "server": "serve", "daemon": "serve", "version": "-version", "--version": "-version",
}

// suggest is the command closest to an unknown word, or "" if none is close.
func suggest(word string) string {
	if s, ok := synonyms[strings.ToLower(word)]; ok {
		return s
	}
	best, bestDist := "", max(1, len(word)/2)+1
	for _, name := range append(commandNames(), "serve") {
		if d := editDistance(strings.ToLower(word), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	return best
}

func commandNames() []string {
	var names []string
	for _, c := range clientCommands() {
		names = append(names, c.name)
	}
	return names
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours ("lgos") cost 1.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// shortUsage is what a usage error prints after saying what was wrong.
func shortUsage(w io.Writer) {
	fmt.Fprint(w, usageHead, "procman -h: every command and flag\n")
}

const usageHead = `usage: procman <command> [flags] [NAME] [-- CMD...]  talk to a running ProcMan
       procman [server flags] <port>                     run ProcMan (also: procman serve ...)
       procman [server flags] -addr HOST:PORT | -socket PATH
`

// printHelp writes the whole help: the client's commands and flags, then the
// server's flags.
func printHelp(w io.Writer) {
	printUsage(w) // client.go
	fmt.Fprintf(w, "\nserver flags (procman [server flags] <port>):\n")
	fs, _ := serverFlags(io.Discard, io.Discard)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
