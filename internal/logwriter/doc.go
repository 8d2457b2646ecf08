// Package logwriter passes a program's log on to its destination (standard
// error: a terminal, a file, a pipe to the journal) from a goroutine of its
// own, so that a destination that stalls never holds up the code that logs.
//
// A process supervisor logs while it holds the locks of the jobs it changes.
// Writing to a pipe whose reader has stopped reading (a journal that is
// restarting, a terminal paused with Ctrl-S, `procman | less` left at its
// first page) blocks once the pipe's 64 KiB are full, and every stop and
// state query would wait behind it. With a Writer the lines wait in memory
// up to a limit; past it they are dropped whole, and counted in a line that
// comes before the next one written.
package logwriter
