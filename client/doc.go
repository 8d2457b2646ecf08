// Package client is a Go client of ProcMan's REST API: what a program uses to
// steer a ProcMan that runs elsewhere (or as another process), as the procman
// command's own commands do.
//
// # Connecting
//
// New takes ProcMan's address as the binary's -addr does ("host:port", a
// port on 127.0.0.1, or an http:// or https:// URL); NewUnix takes the path
// of its Unix socket. WithToken sends the token of a ProcMan that requires
// one, and WithCAFile trusts the CA that signed an https:// ProcMan's
// certificate instead of the system's.
//
//	c, err := client.New("https://host:10000", client.WithToken(token), client.WithCAFile("ca.pem"))
//
// # Methods
//
// There is a method for every route, named as the procman.Manager method it
// stands for (Create, Start, Stop, State, Runs, Logs, ...) and taking and
// returning the root package's types. Each waits for ProcMan's answer as
// long as ctx lets it; a change ProcMan has begun is carried through by
// ProcMan even if the client goes away.
//
// # Errors
//
// An error answer is an *Error, with ProcMan's message, the HTTP status and
// the code of the answer. Codes that stand for one of procman's sentinel
// errors unwrap to it, so errors.Is(err, procman.ErrNotFound) works as it
// does with a Manager, and procman.FieldErrors(err) lists each problem of a
// refused definition. A failure to reach ProcMan is returned as net/http
// gives it, naming ProcMan's address.
//
// # Streams
//
// Logs returns a run's output as an io.ReadCloser, which with Follow reads on
// until the run ends. Events returns ProcMan's state changes as they happen,
// each with the job's whole status; WaitFor builds on it.
package client
