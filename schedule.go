package procman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/Mk-Chan/procman/internal/runlog"
	"github.com/robfig/cron/v3"
)

// parseCron parses a cron schedule: 5-field cron, a descriptor (@hourly,
// @daily, ...), an interval (@every 90s), each optionally after a time zone
// (CRON_TZ=Europe/Berlin). A schedule without a zone uses the machine's.
func parseCron(s string) (cron.Schedule, error) {
	if (strings.HasPrefix(s, "CRON_TZ=") || strings.HasPrefix(s, "TZ=")) && !strings.Contains(s, " ") {
		return nil, errors.New("a time zone must be followed by a schedule, as in \"CRON_TZ=Europe/Berlin 0 3 * * *\"")
	}
	p := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	return p.Parse(s)
}

// checkCron parses a cron schedule and refuses what the parser lets through
// but cannot mean what it says: an interval that is not a whole number of
// seconds of at least one ("@every 0s", "1ms", "-5s" and "1.5s" would all run
// every second), and a schedule that never fires ("0 0 30 2 *").
func checkCron(s string) error {
	sched, err := parseCron(s)
	if err != nil {
		return err
	}
	spec := s
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		_, spec, _ = strings.Cut(spec, " ")
	}
	if every, ok := strings.CutPrefix(strings.TrimSpace(spec), "@every "); ok {
		d, _ := time.ParseDuration(strings.TrimSpace(every)) // parseCron parsed it
		if d < time.Second || d%time.Second != 0 {
			return fmt.Errorf("an interval must be a whole number of seconds, at least 1s; got %s", every)
		}
	}
	if sched.Next(time.Now()).IsZero() { // the parser looks five years ahead
		return errors.New("it never fires: no date matches it")
	}
	return nil
}

// isCron reports whether a (valid) schedule is a cron schedule rather than
// manual or reboot.
func isCron(s string) bool {
	switch s {
	case "", ScheduleManual, "none", ScheduleReboot:
		return false
	}
	return true
}

func newCron(log *slog.Logger) *cron.Cron {
	return cron.New(cron.WithLogger(cronLogger{log}))
}

// cronLogger sends the cron library's logs to slog; it would print to stdout.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", err)...)
}

// plan (re)registers the job's schedule with the scheduler. The caller holds r.mu.
func (r *runner) planLocked() {
	if r.entry != 0 {
		r.m.cron.Remove(r.entry)
		r.entry, r.next = 0, time.Time{}
	}
	if r.deleted || !isCron(r.job.Schedule) || !r.localLocked() { // ticks fire on the owner only
		return
	}
	sched, err := parseCron(r.job.Schedule)
	if err != nil { // validated on the way in; a stored bad value is a bug
		r.m.log.Error("unusable schedule", "job", r.name, "schedule", r.job.Schedule, "err", err)
		return
	}
	r.entry = r.m.cron.Schedule(sched, cron.FuncJob(func() { r.tick(sched) }))
	r.next = sched.Next(time.Now())
}

// tick is one firing of the job's schedule. Ticks coalesce: while one waits
// for the control lock or holds it (a slow stop of overlap "restart"), the
// next ones are dropped, so that at most one is pending per job; and a change
// by hand (Manager.control) drops a pending one.
func (r *runner) tick(sched cron.Schedule) {
	r.mu.Lock()
	r.next = sched.Next(time.Now())
	if r.ticking {
		r.mu.Unlock()
		r.m.log.Debug("schedule tick dropped: the previous one is still pending", "job", r.name)
		return
	}
	r.ticking = true
	job, gen := r.job, r.gen
	r.mu.Unlock()
	untick := func() {
		r.mu.Lock()
		r.ticking = false
		r.mu.Unlock()
	}
	ctx := r.m.ctx
	err := r.control(ctx, func(r *runner) error {
		if r.changedSince(gen) {
			return nil
		}
		_, err := r.start(TriggerSchedule)
		return err
	})
	if !errors.Is(err, ErrRunning) || job.Type == Continuous { // a schedule only brings a stopped service back
		untick()
		r.tickFailed(err)
		return
	}
	switch job.Overlap {
	case OverlapRestart:
		err = r.control(ctx, func(r *runner) error {
			if r.changedSince(gen) {
				return nil
			}
			if err := r.stop(ctx); err != nil {
				return err
			}
			if r.changedSince(gen) { // a change by hand came during the stop: it decides
				return nil
			}
			_, err := r.start(TriggerSchedule)
			return err
		})
		untick()
	case OverlapQueue:
		untick() // a queued tick has its own slot
		err = r.queue(ctx, gen)
	default:
		untick()
		r.recordSkip("the previous run was still going (overlap: skip)")
	}
	r.tickFailed(err)
}

// tickFailed logs a tick's failure. Someone else starting the job meanwhile,
// a shutdown or a deleted job is no failure.
func (r *runner) tickFailed(err error) {
	if err != nil && !errors.Is(err, ErrRunning) && !errors.Is(err, ErrClosed) &&
		!errors.Is(err, ErrNotFound) && !errors.Is(err, context.Canceled) {
		r.m.log.Error("scheduled start failed", "job", r.name, "err", err)
	}
}

// changedSince reports whether a change by hand came after generation gen.
func (r *runner) changedSince(gen int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen != gen
}

// queue starts the job again as soon as its current run ends. One tick waits
// at most; a tick that finds one already waiting is skipped.
func (r *runner) queue(ctx context.Context, gen int) error {
	r.mu.Lock()
	if r.queued {
		r.mu.Unlock()
		r.recordSkip("a run was already queued (overlap: queue)")
		return nil
	}
	r.queued = true
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.queued = false
		r.mu.Unlock()
	}()
	for {
		err := r.control(ctx, func(r *runner) error {
			if r.changedSince(gen) { // stopped, replaced or deleted by hand since the tick: drop it
				return nil
			}
			_, err := r.start(TriggerSchedule)
			return err
		})
		if !errors.Is(err, ErrRunning) {
			return err
		}
		r.mu.Lock()
		active, changed := r.sup != nil, r.changed
		r.mu.Unlock()
		if active {
			select {
			case <-changed:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// recordSkip records a tick that did not run, in the history and as an
// event, and applies log retention: skipped runs count as any other.
func (r *runner) recordSkip(reason string) {
	now := dbNow()
	row := runRow{ID: r.nextRunID(), JobID: r.id, Job: r.name, Host: r.m.cfg.Host, Trigger: string(TriggerSchedule), StartedAt: now, EndedAt: &now,
		Outcome: string(OutcomeSkipped), Error: reason}
	r.recordRun(row)
	r.m.metrics.runFinished(OutcomeSkipped)
	r.mu.Lock()
	job, cur := r.job, r.cur
	// Published under r.mu, as state changes are: in order with them.
	r.m.hub.publish(Event{Type: EventSkipped, Job: r.name, Time: now, Reason: reason, Status: r.statusLocked()})
	r.mu.Unlock()
	var live *runlog.Live
	if cur != nil {
		live = cur.live
	}
	r.m.prune(r.id, job, live)
}

func validateOverlap(j Job) error {
	switch j.Overlap {
	case "":
		return nil
	case OverlapSkip, OverlapQueue, OverlapRestart:
	default:
		return invalid("overlap", "must be %q, %q or %q, got %q", OverlapSkip, OverlapQueue, OverlapRestart, j.Overlap)
	}
	if (j.Type != OneTime && j.Type != "") || !isCron(j.Schedule) {
		return invalid("overlap", "applies only to one_time jobs with a cron schedule")
	}
	return nil
}
