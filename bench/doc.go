// Package bench holds ProcMan's Go benchmarks of its hot paths. Run them with
//
//	go test -run '^$' -bench . -benchmem ./bench/
//
// The side-by-side comparison with supervisord and pm2 is a separate harness
// (see the README's Performance section).
package bench
