package main

// The fleet's scenarios of floating jobs (job field host "*"), for the
// cluster of fleet_cluster_test.go. They wait for floating jobs, owners and
// forwarding; each becomes a test calling it on a newCluster once those
// exist. Each ends with c.checkJournals(): no floating job ever ran twice at
// once. What each needs of the harness beyond today's is said in its doc.

// floatingPinnedThroughAnotherHost: a job created through A pinned to B
// ("host": "B") and started through C runs on B: its journal names B, GET
// /jobs on A and C lists it with host B, and a stop through A stops it on B.
// Needs: the job field host; forwarding of control requests to the owner's
// advertised URL (each node's -advertise is already its real address).
//
//lint:ignore U1000 written once floating jobs exist
func floatingPinnedThroughAnotherHost(c *cluster) { c.t.Helper() }

// floatingMovesOffAKilledHost: floating jobs spread over A, B and C; B's
// ProcMan SIGKILLed (c.kill, which notes its runs gone); each of B's floating
// jobs runs on A or C within lease plus grace of the kill, plus a moment
// (measure and log it); B's pinned jobs show unknown on A and C with a reason
// naming B; B restarted (c.start) recovers its pinned jobs and takes no
// floating job back while it runs elsewhere. Needs: placement (which host
// runs a floating job, read from GET /jobs' host column), claims after
// lease plus grace, the status mirror.
//
//lint:ignore U1000 written once floating jobs exist
func floatingMovesOffAKilledHost(c *cluster) { c.t.Helper() }

// floatingFrozenHostDropsItsCopies: B frozen (c.freeze) past lease plus
// grace, its floating jobs claimed by A and C; B thawed (c.thaw): its copies
// are gone within a moment of waking (their journals end, by TERM or by a
// kill the test notes gone) before B does anything else, and the journals
// show no two runs at once although B's runs went on while it was frozen.
// Needs: self-fencing (a frozen host's floating runs killed on waking), and
// fenced writes. The stop signal of the journal script is TERM; a variant
// with `trap "" TERM` checks that the kill does not wait for the job.
//
//lint:ignore U1000 written once floating jobs exist
func floatingFrozenHostDropsItsCopies(c *cluster) { c.t.Helper() }

// floatingThroughAPostgresRestart: floating jobs on A, B and C; PostgreSQL
// restarted (c.restartPostgres), shorter than the lease: nothing moves, every
// floating job keeps its pid. Then stopped longer than the lease
// (c.srv.Stop, wait, c.srv.Start): every host stops its floating jobs before
// its lease ends (self-fencing by its own clock), none runs twice once the
// server is back, and each is placed again. Needs: self-fencing, claims,
// reconnecting LISTEN (the mirror re-read at once after a reconnect).
//
//lint:ignore U1000 written once floating jobs exist
func floatingThroughAPostgresRestart(c *cluster) { c.t.Helper() }

// floatingCronFiresOnce: a floating one_time job on a cron schedule ("@every
// 1s") ticks once in the fleet: its journal shows one run a tick, on its
// owner, and after its owner is killed, on the new one. Needs: cron only on
// the owner.
//
//lint:ignore U1000 written once floating jobs exist
func floatingCronFiresOnce(c *cluster) { c.t.Helper() }
