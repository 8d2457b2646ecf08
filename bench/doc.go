// Package bench holds ProcMan's Go benchmarks of its hot paths. Run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// bench/scale drives the binary at scale, and bench/logcap measures what
// keeping running runs' logs under max_run_log_bytes costs (go run
// ./bench/logcap). The side-by-side comparison with supervisord and pm2 is a
// separate harness (see the README's Performance section).
package bench
