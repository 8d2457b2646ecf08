// Package bench holds ProcMan's Go benchmarks of its hot paths. Run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// bench/scale drives the binary at scale, bench/logcap measures what
// keeping running runs' logs under max_run_log_bytes costs (go run
// ./bench/logcap), bench/healthidle what exec health checks cost ProcMan
// next to what their own processes cost (go run ./bench/healthidle),
// bench/memjob what a running job costs ProcMan's memory, split into the Go
// runtime's heap and stacks (go run ./bench/memjob -jobs 1000), and
// bench/fleet what a fleet of hosts on one PostgreSQL costs the database
// and how fast it notices a dead host (go run ./bench/fleet). The
// side-by-side comparison with supervisord and pm2 is a
// separate harness (see the README's Performance section).
package bench
