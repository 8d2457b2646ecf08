package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/Mk-Chan/procman"
)

// measureFailover kills the last -kill hosts at once (their links end every
// session they hold and refuse new ones: to the database they are dead) and
// measures, for each victim, from the kill:
//
//   - dead: until the first host lists it not alive, its lease having ended
//     on the database's clock: all a fleet can tell of a dead host before
//     floating jobs;
//   - claimable: until its lease plus the grace ended, from its row: the
//     earliest moment another host may claim its floating jobs;
//   - moved: until every floating job it ran runs on a live host, as
//     that host says. A victim is a partitioned Manager, not a dead one: it
//     self-fences, stopping its floating runs before its lease ends, which
//     is what a claim after lease plus grace relies on.
//
// The database's clock and this process's are one machine's on the
// throwaway server; on a remote -db, claimable is off by their difference.
func (r *round) measureFailover(ctx context.Context) error {
	victims := r.hosts[r.n-r.victims():]
	watcher := r.hosts[0]
	placed, err := placeFloating(ctx, r)
	if err != nil {
		return fmt.Errorf("place floating jobs: %w", err)
	}
	killed := time.Now()
	for _, v := range victims {
		v.link.kill()
	}
	if err := r.waitDead(ctx, watcher, victims, killed); err != nil {
		return err
	}
	r.res.moved, err = waitMoved(ctx, r.hosts, placed, victims, killed, r.deadline()+r.claimTime(len(placed)))
	return err
}

// victims is how many hosts a round kills: -kill, at most all but the watcher.
func (r *round) victims() int { return max(1, min(r.cfg.kill(r.n), r.n-1)) }

// claimTime bounds how long the fleet takes to claim n floating jobs: only
// the least busy live host claims, at its beat, as many as bring it level
// with the next, so a burst is claimed about one job a beat of some host.
func (r *round) claimTime(n int) time.Duration { return time.Duration(n) * 2 * r.cfg.lease / 5 }

// deadline bounds a wait for the fleet to notice a death: the lease, the
// grace, and as long again for a fleet under load.
func (r *round) deadline() time.Duration { return 2*(r.cfg.lease+r.cfg.grace) + 10*time.Second }

// waitDead polls the watcher's list of hosts until every victim is listed
// not alive, and notes when each was, and when its lease plus grace ends.
func (r *round) waitDead(ctx context.Context, watcher *host, victims []*host, killed time.Time) error {
	left := map[string]bool{}
	for _, v := range victims {
		left[v.name] = true
	}
	end := time.Now().Add(r.deadline())
	for len(left) > 0 {
		hosts, err := watcher.m.Hosts(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		for _, h := range hosts {
			if left[h.Name] && !h.Alive {
				delete(left, h.Name)
				r.res.dead = append(r.res.dead, now.Sub(killed))
				r.res.claimable = append(r.res.claimable, h.LeaseUntil.Add(r.cfg.grace).Sub(killed))
			}
		}
		if now.After(end) {
			return fmt.Errorf("after %s, %d killed hosts still listed alive", r.deadline(), len(left))
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// waitMoved polls the live hosts until each floating job that ran on a victim
// runs on one of them, and returns how long after the kill each did.
func waitMoved(ctx context.Context, hosts []*host, placed map[string]string, victims []*host, killed time.Time, limit time.Duration) ([]time.Duration, error) {
	dead := map[string]bool{}
	for _, v := range victims {
		dead[v.name] = true
	}
	live := slices.DeleteFunc(slices.Clone(hosts), func(h *host) bool { return dead[h.name] })
	var moved []time.Duration
	left := map[string]bool{}
	for job, on := range placed {
		if dead[on] {
			left[job] = true
		}
	}
	end := time.Now().Add(limit)
	for len(left) > 0 {
		for job := range left {
			if on := runsOn(live, job); on != "" {
				delete(left, job)
				moved = append(moved, time.Since(killed))
			}
		}
		if time.Now().After(end) {
			return moved, fmt.Errorf("after %s, %d floating jobs of killed hosts run nowhere else", limit, len(left))
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return moved, err
		}
	}
	slices.Sort(moved)
	return moved, nil
}

// placeFloating creates -floating × N continuous floating jobs
// ("exec sleep 3600", started as created) through the first host, waits
// until the fleet has placed every one on a live host, and returns each
// job's host.
func placeFloating(ctx context.Context, r *round) (map[string]string, error) {
	var names []string
	for k := range r.cfg.floating * r.n {
		j := procman.Job{Name: fmt.Sprintf("float%03d", k), Command: "exec sleep 3600", Type: procman.Continuous,
			Schedule: "reboot", Host: procman.HostAny}
		if err := r.hosts[0].m.Create(ctx, j); err != nil {
			return nil, err
		}
		names = append(names, j.Name)
	}
	placed := map[string]string{}
	limit := r.deadline() + r.claimTime(len(names))
	end := time.Now().Add(limit)
	for len(placed) < len(names) {
		for _, name := range names {
			if _, ok := placed[name]; !ok {
				if on := runsOn(r.hosts, name); on != "" {
					placed[name] = on
				}
			}
		}
		if time.Now().After(end) {
			return placed, fmt.Errorf("after %s, %d of %d floating jobs run nowhere", limit, len(names)-len(placed), len(names))
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return placed, err
		}
	}
	return placed, nil
}

// runsOn names the host among hosts that runs floating job name, as that
// host itself says: the truth, not a mirror's view, which lags by a
// notification. "" while none does.
func runsOn(hosts []*host, name string) string {
	for _, h := range hosts {
		if st, err := h.m.State(name); err == nil && st.State == procman.StateRunning && st.Host == h.name {
			return h.name
		}
	}
	return ""
}
