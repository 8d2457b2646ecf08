package procman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"
)

// The mirror (PostgreSQL): every host shows every job. The owner of a job
// writes its status to job_status at each transition, through the writer
// queue (one statement per batch, whatever the number of jobs in it), and
// notifies the fleet (NOTIFY, with ids only: the row is the truth); a host
// that changes a definition notifies the fleet of it. Each host listens on
// its heartbeat's connection: definitions created, changed or deleted
// elsewhere update its runners (it starts a reboot job created elsewhere
// for it, stops one moved away or deleted), and the statuses of the jobs
// it does not own are shown as their owners wrote them, re-published as
// events. Notifications are only a hint, lost while a connection is down:
// a backstop reads what changed every 30 s, and at once after reconnecting.
// A job pinned to a host whose lease has ended is unknown, naming the host.

// notifyChannel is the channel of the fleet's notifications.
const notifyChannel = "procman"

// backstopEvery is how often a host reads the rows that changed, whatever
// the notifications said.
const backstopEvery = 30 * time.Second

// maxPayload bounds a notification's payload (PostgreSQL's limit is 8000 bytes).
const maxPayload = 7900

// statusOut collects the statuses to write: the latest of each job, written
// in one statement by one queued write.
type statusOut struct {
	mu      sync.Mutex
	pending map[string]statusRow // by job id
	queued  bool                 // a write of them is queued
}

type statusRow struct {
	id, job  string
	epoch    int64 // of a floating job: its claim's; the row is written only while it holds
	floating bool
	st       Status
}

// publishStatusLocked queues the job's status for the mirror. The caller
// holds r.mu. Nothing on SQLite.
func (r *runner) publishStatusLocked(st Status) {
	m := r.m
	if m.floats == nil {
		return
	}
	q := &m.floats.out
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.pending == nil {
		q.pending = map[string]statusRow{}
	}
	q.pending[r.id] = statusRow{id: r.id, job: r.name, epoch: r.claimEpoch, floating: r.job.Host == HostAny, st: st}
	if !q.queued {
		q.queued = true
		m.w.enqueue(m.writeStatuses)
	}
}

// writeStatuses is the queued write of the pending statuses: one upsert and
// the notifications of their ids, in the writer's transaction. A retry
// writes the same rows again, with whatever came since.
func (m *Manager) writeStatuses(ctx context.Context, db bun.IDB) error {
	q := &m.floats.out
	q.mu.Lock()
	rows := slices.Collect(maps.Values(q.pending))
	q.pending, q.queued = nil, false
	q.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	err := m.upsertStatuses(ctx, db, rows)
	if err != nil { // put them back for the retry, unless newer ones came
		q.mu.Lock()
		if q.pending == nil {
			q.pending = map[string]statusRow{}
		}
		for _, r := range rows {
			if _, newer := q.pending[r.id]; !newer {
				q.pending[r.id] = r
			}
		}
		if !q.queued {
			q.queued = true
			m.w.enqueue(m.writeStatuses)
		}
		q.mu.Unlock()
		return err
	}
	return nil
}

func (m *Manager) upsertStatuses(ctx context.Context, db bun.IDB, rows []statusRow) error {
	var b strings.Builder
	args := make([]any, 0, 6*len(rows)+1)
	b.WriteString(`INSERT INTO job_status (job_id, job, host, epoch, status, updated_at)
		SELECT v.job_id, v.job, v.host, v.epoch, v.status, now() FROM (VALUES `)
	ids := make([]string, len(rows))
	for i, r := range rows {
		st, _ := json.Marshal(r.st) // a Status always encodes
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?::bigint, ?, ?::boolean)")
		args = append(args, r.id, r.job, m.cfg.Host, r.epoch, string(st), r.floating)
		ids[i] = r.id
	}
	b.WriteString(`) v(job_id, job, host, epoch, status, floating)
		WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.id = v.job_id -- not of a job deleted since
			AND (NOT v.floating OR (j.owner = v.host AND j.owner_epoch = v.epoch)))
		ON CONFLICT (job_id) DO UPDATE SET job = excluded.job, host = excluded.host, epoch = excluded.epoch,
			status = excluded.status, updated_at = now()`)
	if _, err := db.NewRaw(b.String(), args...).Exec(ctx); err != nil {
		return fmt.Errorf("record statuses: %w", err)
	}
	return notify(ctx, db, "s "+m.cfg.Host, ids)
}

// notify sends the fleet kind's notifications of items, as few as fit.
func notify(ctx context.Context, db bun.IDB, kind string, items []string) error {
	for len(items) > 0 {
		payload, n := kind, 0
		for n < len(items) && len(payload)+1+len(items[n]) <= maxPayload {
			payload += " " + items[n]
			n++
		}
		n = max(n, 1)
		items = items[n:]
		if _, err := db.NewRaw("SELECT pg_notify(?, ?)", notifyChannel, payload).Exec(ctx); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	return nil
}

// notifyDefs tells the fleet that the definitions of these jobs changed
// (created, replaced, deleted). Nothing on SQLite. A notification that fails
// is logged: the others' backstop reads the change anyway.
func (m *Manager) notifyDefs(names ...string) {
	if m.floats == nil || len(names) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), writerBusy)
	defer cancel()
	if err := notify(ctx, m.store.wdb, "d "+m.cfg.Host, names); err != nil {
		m.log.Warn("the fleet not notified of a definition change; it reads it within "+backstopEvery.String(), "jobs", names, "err", err)
	}
}

// mirror is what this host knows of the others: their liveness, and where
// its backstop left off.
type mirror struct {
	mu    sync.Mutex
	alive map[string]bool // by host, as last read; a host not in it is taken as alive
	// notes are the notifications not handled yet.
	notes []string
	// statusFrom is the database's time the last status read began at.
	statusFrom time.Time
}

// noted queues a notification for the fleet's goroutine.
func (m *Manager) noted(payload string) {
	f := m.floats
	f.mirror.mu.Lock()
	f.mirror.notes = append(f.mirror.notes, payload)
	f.mirror.mu.Unlock()
	f.queue(m.handleNotes)
}

// handleNotes reads what the pending notifications name, in as few queries
// as the kinds of them.
func (m *Manager) handleNotes(ctx context.Context) {
	mr := &m.floats.mirror
	mr.mu.Lock()
	notes := mr.notes
	mr.notes = nil
	mr.mu.Unlock()
	var ids, defs []string
	for _, n := range notes {
		f := strings.Fields(n)
		if len(f) < 2 || f[1] == m.cfg.Host { // its own
			continue
		}
		switch f[0] {
		case "s":
			ids = append(ids, f[2:]...)
		case "d":
			defs = append(defs, f[2:]...)
		}
	}
	if len(defs) > 0 {
		m.syncDefs(ctx, defs)
	}
	if len(ids) > 0 {
		m.readStatuses(ctx, "job_id IN (?)", bun.List(ids))
	}
}

// mirrored is a status row another host wrote.
type mirrored struct {
	JobID  string `bun:"job_id"`
	Job    string `bun:"job"`
	Host   string `bun:"host"`
	Status string `bun:"status"`
}

// readStatuses reads the status rows where says, and shows those of jobs
// other hosts own.
func (m *Manager) readStatuses(ctx context.Context, where string, args ...any) {
	var rows []mirrored
	err := m.store.db.NewRaw("SELECT job_id, job, host, status FROM job_status WHERE "+where, args...).Scan(ctx, &rows)
	if err != nil {
		m.log.Warn("statuses of other hosts' jobs not read; the backstop tries again", "err", err)
		return
	}
	for _, row := range rows {
		var st Status
		if json.Unmarshal([]byte(row.Status), &st) != nil {
			continue
		}
		if r, err := m.runner(row.Job); err == nil && r.id == row.JobID {
			r.mirrorStatus(row.Host, st)
		}
	}
}

// mirrorStatus shows st, written by host, for a job this host does not
// own, and publishes the change as an event of that host.
func (r *runner) mirrorStatus(host string, st Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sup != nil || r.localLocked() {
		return
	}
	old := r.statusLocked()
	st.Host, st.Name = host, r.name
	r.mirror = &st
	if r.job.Host == HostAny && host != r.m.cfg.Host { // who holds it, as it says itself
		r.claimer = host
	}
	now := r.statusLocked()
	if now.State == old.State && now.Since.Equal(old.Since) && now.PID == old.PID {
		return
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.m.hub.publish(Event{Type: EventState, Job: r.name, From: old.State, To: now.State, Time: now.Since, PID: now.PID, Status: now})
}

// defRow is a definition as syncDefs reads it.
type defRow struct {
	Name, ID, Def, Source, Home string
	Wanted                      bool
}

// syncDefs brings the named jobs' runners in line with their rows: made,
// changed, or gone.
func (m *Manager) syncDefs(ctx context.Context, names []string) {
	var rows []defRow
	err := m.store.db.NewRaw("SELECT name, id, def, source, home, wanted FROM jobs WHERE name IN (?)", bun.List(names)).Scan(ctx, &rows)
	if err != nil {
		m.log.Warn("definitions changed elsewhere not read; the backstop tries again", "err", err)
		return
	}
	byName := map[string]defRow{}
	for _, row := range rows {
		byName[row.Name] = row
	}
	for _, name := range names {
		row, ok := byName[name]
		if err := m.syncDef(ctx, name, row, ok); err != nil {
			m.log.Error("definition changed elsewhere not applied", "job", name, "err", err)
		}
	}
}

// syncDef applies a definition another host wrote (ok false: deleted).
func (m *Manager) syncDef(ctx context.Context, name string, row defRow, ok bool) error {
	r, err := m.runner(name)
	if err == nil && (!ok || r.id != row.ID) { // deleted, or deleted and made again
		if err := m.forget(ctx, r); err != nil {
			return err
		}
		r = nil
	}
	if !ok {
		return nil
	}
	j, err := jobRow{Name: row.Name, Def: row.Def}.job()
	if err != nil {
		return err
	}
	if r != nil {
		r.mu.Lock()
		moved := r.sup != nil && m.ownerOf(j, r.home, r.claimer) != m.cfg.Host
		r.mu.Unlock()
		if moved { // its host changed: this host stops it first
			if err := r.control(ctx, func(r *runner) error { return r.stop(ctx) }); err != nil {
				return err
			}
		}
	}
	created := r == nil
	r = m.placeRunner(storedJob{Job: j, id: row.ID, source: row.Source, home: row.Home, wanted: row.Wanted})
	r.mu.Lock()
	if j.Host != HostAny {
		r.claimer = ""
	}
	r.planLocked()
	local := r.localLocked()
	r.mu.Unlock()
	if created && local && j.startsOnBoot() { // made elsewhere for this host to run
		if _, err := m.begin(ctx, name, TriggerReboot); err != nil && !errors.Is(err, ErrRunning) {
			return err
		}
	}
	return nil
}

// forget removes a job deleted elsewhere, stopping it first if it runs here.
func (m *Manager) forget(ctx context.Context, r *runner) error {
	err := r.control(ctx, func(r *runner) error {
		if err := r.stop(ctx); err != nil && !errors.Is(err, ErrStopFailed) {
			return err
		}
		r.setDeleted(true)
		return nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	m.mu.Lock()
	if m.jobs[r.name] == r {
		delete(m.jobs, r.name)
		m.sorted = nil
		m.graph.set(r.name, nil)
	}
	m.mu.Unlock()
	return nil
}

// backstop reads whatever changed, notifications or not: every job's
// revision (its row's xmin) against what this host has, the statuses
// written since the last read, and the hosts' liveness.
func (m *Manager) backstop(ctx context.Context) {
	var revs []struct{ Name, ID, Rev string }
	if err := m.store.db.NewRaw("SELECT name, id, xmin::text AS rev FROM jobs").Scan(ctx, &revs); err != nil {
		m.log.Warn("backstop: definitions not read", "err", err)
		return
	}
	var changed []string
	seen := map[string]bool{}
	for _, rv := range revs {
		seen[rv.Name] = true
		r, err := m.runner(rv.Name)
		if err != nil || r.id != rv.ID || r.seenRev() != rv.Rev {
			changed = append(changed, rv.Name)
		}
		if err == nil && r.id == rv.ID {
			r.setRev(rv.Rev)
		}
	}
	for _, r := range m.runners() {
		if !seen[r.name] {
			changed = append(changed, r.name)
		}
	}
	if len(changed) > 0 {
		m.syncDefs(ctx, changed)
	}
	m.readHosts(ctx)
	mr := &m.floats.mirror
	mr.mu.Lock()
	from := mr.statusFrom
	mr.mu.Unlock()
	var now time.Time
	if err := m.store.db.NewRaw("SELECT now()").Scan(ctx, &now); err != nil {
		return
	}
	// A write that began before the last read may commit after it: read
	// back one backstop's length.
	if from.IsZero() {
		m.readStatuses(ctx, "host <> ?", m.cfg.Host)
	} else {
		m.readStatuses(ctx, "host <> ? AND updated_at > ?", m.cfg.Host, from.Add(-backstopEvery))
	}
	mr.mu.Lock()
	mr.statusFrom = now
	mr.mu.Unlock()
}

// readHosts reads which hosts are alive, and re-publishes the status of the
// jobs of those that came or went.
func (m *Manager) readHosts(ctx context.Context) {
	var rows []struct {
		Name  string
		Alive bool
	}
	if err := m.store.db.NewRaw("SELECT name, lease_until > now() AS alive FROM hosts").Scan(ctx, &rows); err != nil {
		m.log.Warn("hosts' liveness not read", "err", err)
		return
	}
	mr := &m.floats.mirror
	alive := make(map[string]bool, len(rows))
	for _, h := range rows {
		alive[h.Name] = h.Alive
	}
	mr.mu.Lock()
	old := mr.alive
	mr.alive = alive
	mr.mu.Unlock()
	for _, r := range m.runners() {
		host := r.owner()
		if host != m.cfg.Host && old[host] != alive[host] {
			r.mu.Lock()
			now := r.statusLocked()
			close(r.changed)
			r.changed = make(chan struct{})
			r.m.hub.publish(Event{Type: EventState, Job: r.name, To: now.State, Time: time.Now(), Status: now})
			r.mu.Unlock()
		}
	}
}

// hostAlive reports whether host's lease had not ended when last read.
func (m *Manager) hostAlive(host string) bool {
	if m.floats == nil {
		return true
	}
	mr := &m.floats.mirror
	mr.mu.Lock()
	defer mr.mu.Unlock()
	alive, known := mr.alive[host]
	return alive || !known
}

// backstopLoop runs the backstop every backstopEvery.
func (m *Manager) backstopLoop() {
	t := time.NewTicker(backstopEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			m.floats.queue(m.backstop)
		case <-m.ctx.Done():
			return
		}
	}
}

func (r *runner) seenRev() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rev
}

func (r *runner) setRev(rev string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rev = rev
}
