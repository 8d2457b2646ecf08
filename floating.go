package procman

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Floating jobs (Job.Host "*") on PostgreSQL. A floating job is owned by the
// host whose claim set its row's owner and owner_epoch: the heartbeat's
// statement claims (lease.go, beatSQL) the floating jobs no live host holds,
// dealt over the live hosts fewest active jobs first, once a dead owner's
// lease and the grace have passed by the database's clock. Only the owner runs
// the job, ticks its schedule and writes about it, each write fenced by its
// epoch (writer.go): a write found fenced is dropped, and the host drops the
// job at once.
//
// Self-fencing, by this host's monotonic clock from when its last renewal
// that succeeded was sent (so that it ends no later than the database's
// lease): past Lease/2 the floating jobs are stopped, their stop timeouts
// cut so that every group is killed by Lease - margin; past that, or on a
// renewal answered "lapsed", every floating run is SIGKILLed at once,
// before anything else, and the jobs dropped; once the lease is renewed or
// the host has joined again, it takes back the jobs its row still names it
// the owner of, and starts those that were running.

// claim is a floating job the heartbeat claimed: its name and id.
type claim struct{ name, id string }

// fleetHooks are what the heartbeat tells the Manager.
type fleetHooks struct {
	claimed func(epoch int64, claims []claim) // jobs claimed under epoch
	joined  func(epoch int64)                 // joined again, under a new epoch
	renewed func(epoch int64)                 // a renewal succeeded
	lapsed  func(why string)                  // kill every floating run now

	notified     func(payload string) // a notification of the fleet (mirror.go)
	reconnected  func()               // notifications may have been lost
	hostsChanged func()               // the number of live hosts changed
}

// fenceMargin is how long before its lease ends, by its own clock, a host
// has killed every floating run: room for a clock that runs slow, and for
// the kill.
func fenceMargin(lease time.Duration) time.Duration { return lease / 5 }

// floaters is the Manager's part in a fleet's floating jobs: the queue of
// work the heartbeat hands the claimer goroutine.
type floaters struct {
	lease    *hostLease
	mu       sync.Mutex
	todo     []func(context.Context)
	wake     chan struct{}
	done     chan struct{} // closed when the claimer and the self-fencing watch have ended
	troubled atomic.Bool   // floating jobs were stopped or dropped: take them back once renewed
	out      statusOut     // statuses to write (mirror.go)
	mirror   mirror        // what this host knows of the others (mirror.go)
}

// startFleet starts the claimer and the self-fencing watch (PostgreSQL only).
func (m *Manager) startFleet(l *hostLease) {
	f := &floaters{lease: l, wake: make(chan struct{}, 1), done: make(chan struct{})}
	m.floats = f
	l.mu.Lock()
	l.fleet = fleetHooks{
		claimed: func(epoch int64, cs []claim) {
			f.queue(func(ctx context.Context) {
				m.adoptAll(ctx, epoch, cs)
				l.claimsAdopted(len(cs))
			})
		},
		joined: func(epoch int64) {
			m.renewedLease()
			f.queue(func(ctx context.Context) { m.retake(ctx, epoch) })
		},
		renewed: func(epoch int64) {
			m.renewedLease()
			if f.troubled.CompareAndSwap(true, false) {
				f.queue(func(ctx context.Context) { m.retake(ctx, epoch) })
			}
		},
		lapsed:       func(why string) { m.dropFloating(why) },
		notified:     m.noted,
		reconnected:  func() { f.queue(m.backstop) },
		hostsChanged: func() { f.queue(m.readHosts) },
	}
	l.mu.Unlock()
	// The guardian kills the floating runs by itself once the lease has gone
	// unrenewed for nine tenths of its length: past the kill of self-fencing
	// (Lease - fenceMargin) which comes first while this process can act, and
	// before the lease ends (then others may claim) when it cannot, frozen by
	// SIGSTOP or hung.
	if err := m.guard.Fence(l.lease - l.lease/10); err != nil {
		m.log.Error("the guardian cannot fence floating jobs: a frozen ProcMan's runs would go on", "err", err)
	}
	m.renewedLease()
	f.queue(m.backstop) // what changed between this host's load and its listening
	var wg sync.WaitGroup
	wg.Go(func() { m.claimLoop(f) })
	wg.Go(func() { m.watchLease(f) })
	wg.Go(m.backstopLoop)
	go func() {
		wg.Wait()
		close(f.done)
	}()
}

// renewedLease tells the guardian when the renewal that holds the lease
// now was sent.
func (m *Manager) renewedLease() {
	if sent, epoch, _ := m.floats.lease.clock(); epoch != 0 {
		m.guard.Renewed(sent)
	}
}

func (f *floaters) queue(job func(context.Context)) {
	f.mu.Lock()
	f.todo = append(f.todo, job)
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// claimLoop adopts what the heartbeat claimed, one batch at a time, off the
// heartbeat's goroutine: an adoption reads the database and starts jobs.
func (m *Manager) claimLoop(f *floaters) {
	for {
		select {
		case <-f.wake:
		case <-m.ctx.Done():
			return
		}
		f.mu.Lock()
		todo := f.todo
		f.todo = nil
		f.mu.Unlock()
		for _, job := range todo {
			job(m.ctx)
		}
	}
}

// retake takes back, under epoch, the floating jobs whose rows still name
// this host the owner (after a restart, once recovery has killed what was
// left of their runs; or once the lease is renewed or joined again), and
// starts those that were running.
func (m *Manager) retake(ctx context.Context, epoch int64) {
	// This host's own writes queued meanwhile (a desired state) go first,
	// under the epoch they were fenced by, so that what is taken back is
	// what this host last decided.
	wait, cancel := context.WithTimeout(ctx, m.floats.lease.lease)
	err := m.w.sync(wait)
	cancel()
	if err != nil {
		m.log.Warn("taking back floating jobs with writes still queued", "err", err)
	}
	var rows []struct{ Name, ID string }
	err = m.store.wdb.NewRaw(`UPDATE jobs SET owner_epoch = ? WHERE owner = ? AND floating RETURNING name, id`,
		epoch, m.cfg.Host).Scan(ctx, &rows)
	if err != nil {
		m.log.Error("floating jobs not taken back; the next renewal tries again", "host", m.cfg.Host, "err", err)
		m.floats.troubled.Store(true)
		return
	}
	cs := make([]claim, len(rows))
	for i, r := range rows {
		cs[i] = claim{name: r.Name, id: r.ID}
	}
	m.adoptAll(ctx, epoch, cs)
}

func (m *Manager) adoptAll(ctx context.Context, epoch int64, cs []claim) {
	for _, c := range cs {
		if err := m.adopt(ctx, epoch, c); err != nil {
			m.log.Error("claimed floating job not adopted", "job", c.name, "err", err)
		}
	}
}

// adopt makes a floating job claimed under epoch this host's: its
// definition as its row has it now, its runs' numbering after the last
// recorded, its schedule; and starts it if it was running (wanted) or has
// the reboot schedule.
func (m *Manager) adopt(ctx context.Context, epoch int64, c claim) error {
	var row struct {
		Name, ID, Def, Source, Home string
		Wanted                      bool
		Top                         int64
	}
	err := m.store.db.NewRaw(`SELECT name, id, def, source, home, wanted,
		(SELECT coalesce(max(id), 0) FROM runs WHERE job_id = jobs.id) AS top
		FROM jobs WHERE name = ? AND id = ? AND owner = ? AND owner_epoch = ?`, c.name, c.id, m.cfg.Host, epoch).Scan(ctx, &row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // claimed by another since, or deleted
	}
	if err != nil {
		return fmt.Errorf("read claimed job: %w", err)
	}
	j, err := jobRow{Name: row.Name, Def: row.Def}.job()
	if err != nil {
		return err
	}
	r := m.placeRunner(storedJob{Job: j, id: row.ID, source: row.Source, home: row.Home, wanted: row.Wanted})
	r.mu.Lock()
	r.claimer, r.claimEpoch = m.cfg.Host, epoch
	if row.Top > r.lastRunID.Load() {
		r.lastRunID.Store(row.Top)
	}
	r.planLocked()
	active, wanted := r.sup != nil, r.wanted
	r.mu.Unlock()
	m.log.Info("floating job claimed", "job", j.Name, "host", m.cfg.Host, "epoch", epoch)
	trigger := TriggerResume
	switch {
	case active:
		return nil
	case j.startsOnBoot():
		trigger = TriggerReboot
	case !wanted || j.Type != Continuous:
		return nil
	}
	if _, err := m.begin(ctx, j.Name, trigger); err != nil && !errors.Is(err, ErrRunning) {
		return err
	}
	return nil
}

// placeRunner returns the runner of job sj, made if this Manager has none
// (a job created elsewhere since it opened) or one of another incarnation,
// and its definition brought up to date.
func (m *Manager) placeRunner(sj storedJob) *runner {
	m.mu.RLock()
	r, ok := m.jobs[sj.Name]
	m.mu.RUnlock()
	if ok && r.id == sj.id {
		r.mu.Lock()
		r.wanted = sj.wanted
		changed := !reflect.DeepEqual(r.job, sj.Job) // changed elsewhere meanwhile
		if changed {
			r.job, r.version = sj.Job, m.versions.Add(1)
			r.gen++ // a queued schedule tick belongs to the old definition
		}
		r.mu.Unlock()
		if changed {
			m.mu.Lock()
			m.graph.set(sj.Name, sj.DependsOn)
			m.mu.Unlock()
		}
		return r
	}
	nr := newRunner(m, sj.id, sj.source, sj.home, sj.Job)
	nr.wanted = sj.wanted
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.jobs[sj.Name]; ok && cur.id == sj.id { // placed meanwhile
		return cur
	}
	m.jobs[sj.Name] = nr
	m.sorted = nil
	m.graph.set(sj.Name, sj.DependsOn)
	return nr
}

// floatingHere lists the floating jobs this host holds.
func (m *Manager) floatingHere() []*runner {
	var out []*runner
	for _, r := range m.runners() {
		r.mu.Lock()
		mine := r.job.Host == HostAny && r.claimer == m.cfg.Host
		r.mu.Unlock()
		if mine {
			out = append(out, r)
		}
	}
	return out
}

// dropFloating kills every floating run at once and gives up the jobs: past
// the lease, this host may no longer run them. Signals only: nothing here
// waits for the database or for a stop.
func (m *Manager) dropFloating(why string) {
	rs := m.floatingHere()
	if len(rs) == 0 {
		return
	}
	m.floats.troubled.Store(true)
	killed := 0
	for _, r := range rs {
		if r.drop() {
			killed++
		}
	}
	m.log.Error("self-fencing: every floating run killed and its job given up", "host", m.cfg.Host, "why", why,
		"jobs", len(rs), "runs_killed", killed)
}

// drop gives the job up: SIGKILL to its run's group, its supervisor told to
// end at once, its schedule dropped. It reports whether a run was killed.
func (r *runner) drop() bool {
	r.mu.Lock()
	r.claimer = ""
	r.planLocked()
	s, p := r.sup, r.cur
	killed := p != nil && p.leader.SignalGroup(syscall.SIGKILL) == nil
	r.mu.Unlock()
	if s != nil {
		s.stop()
		s.kill()
	}
	return killed
}

// watchLease is self-fencing's watch: it wakes when the lease changes and
// at the moments the lease, by this host's clock, calls for a stop or a kill
// of the floating jobs.
func (m *Manager) watchLease(f *floaters) {
	l := f.lease
	lease, margin := l.lease, fenceMargin(l.lease)
	stoppedFor := time.Time{} // the renewal whose lapse the soft stop was for
	for {
		sent, epoch, change := l.clock()
		soft, hard := sent.Add(lease/2), sent.Add(lease-margin)
		var next time.Time
		switch now := time.Now(); {
		case l.asleep.Load(): // tests: a process stopped by SIGSTOP does nothing
			next = now.Add(lease / 10)
		case epoch == 0 || !now.Before(hard):
			m.dropFloating("the lease is about to end unrenewed")
			next = now.Add(lease / 10)
		case !now.Before(soft):
			if stoppedFor != sent {
				stoppedFor = sent
				m.stopFloating(hard)
			}
			next = hard
		default:
			next = soft
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-t.C:
		case <-change:
		case <-m.ctx.Done():
			t.Stop()
			return
		}
		t.Stop()
	}
}

// stopFloating stops every floating job gracefully: the lease has gone
// unrenewed for half its length. Whatever is left of them at hard is
// killed (dropFloating). They are started again once the lease is renewed.
func (m *Manager) stopFloating(hard time.Time) {
	rs := m.floatingHere()
	n := 0
	for _, r := range rs {
		r.mu.Lock()
		s := r.sup
		r.mu.Unlock()
		if s != nil {
			s.stop()
			n++
		}
	}
	if n > 0 {
		m.floats.troubled.Store(true)
		m.log.Error("self-fencing: the lease is not being renewed; floating jobs stopped", "host", m.cfg.Host,
			"jobs", n, "killed_in", time.Until(hard).Round(time.Millisecond))
	}
}

// fenceLocked is the fence of the job's writes: nil but for a floating job
// on PostgreSQL. The caller holds r.mu.
func (r *runner) fenceLocked() *fence {
	if r.job.Host != HostAny || r.m.floats == nil {
		return nil
	}
	return &fence{job: r.name, id: r.id, epoch: r.claimEpoch}
}

// lostFloating drops the floating jobs whose writes were found fenced:
// another host holds them now.
func (m *Manager) lostFloating(names []string) {
	for _, name := range names {
		r, err := m.runner(name)
		if err != nil {
			continue
		}
		r.mu.Lock()
		floating := r.job.Host == HostAny
		r.mu.Unlock()
		if floating {
			r.drop()
		}
	}
}

// floatingChanged has the heartbeat beat now if j floats: it may be this
// host's to claim.
func (m *Manager) floatingChanged(j Job) {
	if j.Host == HostAny && m.floats != nil {
		m.floats.lease.pokeBeat()
	}
}

// floatingUnsafe reports whether a floating job must not start here now: the
// lease has gone unrenewed for half its length or more, or is fenced.
func (m *Manager) floatingUnsafe() bool {
	if m.floats == nil {
		return false
	}
	sent, epoch, _ := m.floats.lease.clock()
	return epoch == 0 || time.Since(sent) >= m.floats.lease.lease/2
}
