// Package runlog keeps the log file of a running process small without
// copying its output on the way in: the process writes straight into the file
// (O_APPEND), and once the file grows past a cap, the oldest part of it is
// moved into a numbered file beside it ("part") and cut from the live file's
// head. It knows nothing of jobs; the procman package decides what to keep.
//
// # Files
//
// A run's output is its live (or, once it has ended, last) file NAME.log and
// its parts NAME.000001.log, NAME.000002.log, ..., oldest first: in name order,
// the parts come before the live file, and reading them in order gives the
// output as it was written. A part being written is NAME.00000N.log.tmp until
// it is complete.
//
// # Cutting the head
//
// Where the file system allows it (ext4, XFS), the head is removed with
// fallocate(FALLOC_FL_COLLAPSE_RANGE) on a block-aligned prefix, after it has
// been copied into the part: the kernel serialises the collapse with the
// process's appends, so not a byte is lost, and the live file keeps less than
// one block plus what came since. Elsewhere (tmpfs) the file is copied and then
// truncated: what the process writes between the last look at the file's size
// and the truncation (microseconds, while the watcher holds the file) is lost.
//
// # Noticing growth
//
// One inotify instance per Watcher: each live file has an IN_MODIFY|IN_ONESHOT
// watch, so at most one event per file waits in the kernel. The Watcher reads
// them at most once per tick of a 50 ms clock and, for each file written to,
// re-arms its watch and looks at its size (one fstat). So an idle file costs
// nothing, a file written to now and then one look per write, and a fast
// writer one look per tick, however much it writes; and each wake of the
// Watcher handles every file that needs it, which keeps the wakes few with
// many jobs (on a small virtual machine a wake costs more than the looks).
// Without inotify (or when no watch can be added) the files are looked at on
// a timer instead, at least a second apart.
package runlog
