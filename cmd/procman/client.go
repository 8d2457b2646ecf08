package main

// The command-line client: procman ls, procman logs web -f, ... It speaks the
// REST API of a running ProcMan through package client and formats the
// answers (format.go).

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/Mk-Chan/procman"
	"github.com/Mk-Chan/procman/client"
)

// cli is one run of a client command; its commands are its methods
// (client_jobs.go, client_show.go, client_stream.go, client_hosts.go).
type cli struct {
	ctx            context.Context
	cmd            *command
	fs             *flag.FlagSet
	stdout, stderr io.Writer

	// flags every command takes
	addr, socket, tokenFile, caFile, output string

	json, color  bool
	exportFormat procman.Format // export's -o
	api          *client.Client // once the flags are parsed (connect)
}

// command is one client subcommand.
type command struct {
	name, args, help string
	run              func(c *cli, args []string) error
}

// clientCommands are the client subcommands, in the order of the usage text.
// A function rather than a variable: help refers to the table itself.
func clientCommands() []command {
	return []command{
		{"ls", "[-l SELECTOR]", "list the jobs, their states, CPU and memory (-l: those the label selector chooses)", (*cli).ls},
		{"top", "", "the running jobs' CPU and memory, live (q quits)", (*cli).top},
		{"show", "NAME", "a job's definition and status", (*cli).show},
		{"add", "NAME [-start] [job flags] -- CMD...\n       procman add -f job.json [-start] [job flags] [NAME] [-- CMD...]", "create a job (-start: and start it)", (*cli).add},
		{"edit", "NAME [job flags] [-- CMD...]", "change the given fields of a job", (*cli).edit},
		{"rm", "NAME", "stop and delete a job (its logs stay)", (*cli).rm},
		{"start", "NAME | -l SELECTOR | -all", "start a job, or the jobs chosen (dependencies first)", (*cli).start},
		{"stop", "NAME | -l SELECTOR | -all", "stop a job (its dependents first); returns once their processes are gone", (*cli).stop},
		{"restart", "NAME | -l SELECTOR | -all", "stop a job if active, start it with its saved definition", (*cli).restart},
		{"signal", "NAME SIGNAL", "send a signal (HUP, USR1, ... or a number) to a job's running processes", (*cli).signal},
		{"state", "NAME", "a job's status", (*cli).state},
		{"logs", "NAME [-f] [-n N] [-run ID]", "the latest run's output (-run: another run)", (*cli).logs},
		{"runs", "NAME [-n N]", "a job's runs, newest first (default 20)", (*cli).runs},
		{"events", "", "print every state change until interrupted", (*cli).events},
		{"apply", "-f FILE [-dry-run] [-prune] [-restart] [-exit-code]", "make the jobs what a YAML or JSON file says; prints the plan", (*cli).apply},
		{"diff", "-f FILE [-prune] [-exit-code]", "the plan of apply, changing nothing (apply -dry-run)", (*cli).diff},
		{"export", "[-o yaml|json] [-l SELECTOR]", "every job (-l: those the label selector chooses) as a file that apply takes back", (*cli).export},
		{"hosts", "", "every host of the fleet, alive or not (* marks the one answering)", (*cli).hosts},
		{"help", "", "print this help", (*cli).help},
	}
}

// isClientCommand reports whether the first argument names a client command
// rather than starting the server.
func isClientCommand(arg string) bool {
	_, ok := findCommand(arg)
	return ok
}

func findCommand(name string) (*command, bool) {
	commands := clientCommands()
	for i := range commands {
		if commands[i].name == name {
			return &commands[i], true
		}
	}
	return nil, false
}

const clientUsage = `
commands:
%s
Flags come before or after the command and NAME (procman logs web -f -n 20,
procman -addr host:10000 ls); everything after -- is the job's command.
Every command takes:
  -addr ADDR        ProcMan's address: host:port, a port, or http(s)://host:port
                    (default $PROCMAN_ADDR, else 127.0.0.1:10000)
  -socket PATH      use ProcMan's Unix socket instead (default $PROCMAN_SOCKET)
  -token-file PATH  send the token in this file (default $PROCMAN_TOKEN)
  -ca-file PATH     with an https:// address: trust the certificates in this
                    PEM file, not the system's (default $PROCMAN_CA_FILE)
  -o json           print ProcMan's answer as JSON, for scripts (events: one
                    object per line; logs print the output as it is anyway)

Job flags of add and edit (an empty value, or 0, sets a field back to its default):
  -type one_time|continuous   the default: one_time (runs once per start);
                              give -type continuous for a service
  -schedule S  -overlap skip|queue|restart  -dir DIR  -env K=V (repeatable)
  -unset-env K  -env-file FILE  -user USER  -stop-signal SIG  -stop-timeout D
  -restart always|on-failure  -success-exit-codes 3,4  -backoff-initial D
  -backoff-max D  -min-uptime D  -max-retries N
  -depends-on NAME[=CONDITION] (repeatable; conditions: started, the default,
  healthy, completed, completed_successfully)  -no-depends-on NAME
  -start-timeout D
  -health-exec CMD | -health-http URL | -health-tcp HOST:PORT (empty: no
  check)  -health-interval D  -health-timeout D  -health-retries N
  -health-start-period D  -on-unhealthy restart|ignore
  -keep-runs N  -max-log-bytes N  -max-run-log-bytes N
add -f reads the job from a JSON file (- for stdin); NAME, job flags and
-- CMD change it. The words after -- are joined with spaces and run by
/bin/sh -c: procman add web -- 'cd /srv && exec ./web -port 8080'.
start, stop, restart -l SELECTOR (or -all) act on the jobs a label selector
chooses (or on every job), in dependency order: terms key=value, key!=value,
key, !key, joined by commas; ls -l SELECTOR lists them.
logs: -n N the last N lines; -f follow the output, into the job's next runs
(a line "--- procman: ..." between two), until the job comes to rest.
apply -f FILE sends a YAML file (JSON if it ends in .json) for ProcMan to check
and apply, and prints the plan: + created, ~ changed (each field, old -> new),
- deleted. The jobs it creates record FILE as their source (-source NAME
names it otherwise); -prune deletes that source's jobs the file no longer has.
-exit-code exits 2 when the plan changes something. export -o json: JSON.
top: refreshed every second, sorted by CPU; q or Ctrl-C quits. Not on a
terminal, it prints one table (CPU since each run began) and exits.

Exit status of a command: 0 done; 1 ProcMan answered with an error, or could
not be reached; 2 bad usage, or apply -exit-code with changes.
`

// printUsage writes the client's usage text.
func printUsage(w io.Writer) {
	var b strings.Builder
	tw := newTable(&b)
	for _, c := range clientCommands() {
		args, _, _ := strings.Cut(c.args, "\n")
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+args), c.help)
	}
	tw.Flush()
	fmt.Fprint(w, usageHead)
	fmt.Fprintf(w, clientUsage, b.String())
}

// runClient runs the client command args[0] and returns the exit code.
func runClient(args []string, stdout, stderr io.Writer) int {
	cmd, _ := findCommand(args[0])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := &cli{ctx: ctx, cmd: cmd, stdout: stdout, stderr: stderr}
	err := cmd.run(c, args[1:])
	if c.api != nil {
		c.api.CloseIdleConnections()
	}
	return exitCode(stderr, "procman "+cmd.name, err, func(w io.Writer) { c.commandUsage(w, false) })
}

// help prints the whole help; it needs no connection, so it takes no flags.
func (c *cli) help([]string) error {
	printHelp(c.stdout)
	return nil
}

// commandUsage writes one command's usage line, and with all its flags too.
func (c *cli) commandUsage(w io.Writer, all bool) {
	fmt.Fprintf(w, "usage: procman %s\n", strings.TrimSpace(c.cmd.name+" "+c.cmd.args))
	if !all {
		fmt.Fprintf(w, "(procman %s -h: its flags; procman -h: every command)\n", c.cmd.name)
		return
	}
	fmt.Fprintf(w, "%s\n\nflags:\n", c.cmd.help)
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	fmt.Fprintln(w, "\nprocman -h: every command and flag")
}

// flagSet returns a flag set for the command with the flags every command takes.
func (c *cli) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("procman "+c.cmd.name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {} // parse prints it
	fs.StringVar(&c.addr, "addr", "", "ProcMan's address: host:port, a port, or http(s)://host:port (default $PROCMAN_ADDR, else "+client.DefaultAddr+")")
	fs.StringVar(&c.socket, "socket", "", "use ProcMan's Unix socket at this path (default $PROCMAN_SOCKET)")
	fs.StringVar(&c.tokenFile, "token-file", "", "send the token in this file as Authorization: Bearer (default $PROCMAN_TOKEN)")
	fs.StringVar(&c.caFile, "ca-file", "", "with an https:// address: trust the certificates in this PEM file, not the system's (default $PROCMAN_CA_FILE)")
	fs.StringVar(&c.output, "o", "", `"json": print ProcMan's answer as JSON`)
	c.fs = fs
	return fs
}

// parse reads flags anywhere among args, so that both "logs -f web" and "logs
// web -f" work, and returns the other arguments: those before "--" in pos, the
// ones after it in rest. Then it prepares the connection.
func (c *cli) parse(fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.commandUsage(c.stdout, true)
				return nil, nil, errDone
			}
			return nil, nil, usageError{} // the flag package has said what is wrong
		}
		left := fs.Args()
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			rest = left
			break
		}
		if len(left) == 0 {
			break
		}
		pos, args = append(pos, left[0]), left[1:]
	}
	switch {
	case c.cmd.name == "export" && (c.output == "" || c.output == "yaml" || c.output == "json"):
		c.exportFormat = procman.Format(cmp.Or(c.output, "yaml"))
		c.output = ""
	case c.cmd.name == "export":
		return nil, nil, usagef("-o %q: export writes yaml (the default) or json", c.output)
	case c.output != "" && c.output != "json":
		return nil, nil, usagef("-o %q: the only output format is json", c.output)
	}
	c.json = c.output == "json"
	c.color = !c.json && isTerminal(c.stdout) && os.Getenv("NO_COLOR") == ""
	return pos, rest, c.connect()
}

// parseArgs parses a command that takes exactly the named positional arguments.
func (c *cli) parseArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	pos, rest, err := c.parse(fs, args)
	if err != nil {
		return nil, err
	}
	pos = append(pos, rest...) // after --, a NAME may start with "-"
	switch {
	case len(pos) < len(names):
		return nil, usagef("missing %s", names[len(pos)])
	case len(pos) > len(names):
		return nil, usagef("unexpected argument %q", pos[len(names)])
	}
	return pos, nil
}

// parseName parses a command that takes one argument, the job's name.
func (c *cli) parseName(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := c.parseArgs(fs, args, "NAME")
	if err != nil {
		return "", err
	}
	return pos[0], nil
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
