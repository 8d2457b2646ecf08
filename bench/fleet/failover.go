package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
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
//   - moved: until every floating job it ran runs on a live host
//     (placeFloating and runsOn, below, wait for floating jobs).
//
// The database's clock and this process's are one machine's on the
// throwaway server; on a remote -db, claimable is off by their difference.
func (r *round) measureFailover(ctx context.Context) error {
	victims := r.hosts[r.n-r.victims():]
	watcher := r.hosts[0]
	placed, floatErr := placeFloating(ctx, r)
	killed := time.Now()
	for _, v := range victims {
		v.link.kill()
	}
	if err := r.waitDead(ctx, watcher, victims, killed); err != nil {
		return err
	}
	if floatErr != nil {
		r.res.movedErr = floatErr
		return nil
	}
	var err error
	r.res.moved, err = waitMoved(ctx, watcher, placed, victims, killed, r.deadline())
	return err
}

// victims is how many hosts a round kills: -kill, at most all but the watcher.
func (r *round) victims() int { return max(1, min(r.cfg.kill(r.n), r.n-1)) }

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

// waitMoved polls the watcher until each floating job that ran on a victim
// runs on a live host, and returns how long after the kill each did.
func waitMoved(ctx context.Context, watcher *host, placed map[string]string, victims []*host, killed time.Time, limit time.Duration) ([]time.Duration, error) {
	dead := map[string]bool{}
	for _, v := range victims {
		dead[v.name] = true
	}
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
			on, err := runsOn(watcher, job)
			if err != nil {
				return moved, err
			}
			if on != "" && !dead[on] {
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

// The figures of floating jobs wait for them: a job whose field host is "*",
// which the fleet places on one live host and moves when that host dies.
// Until they exist, placeFloating reports errNoFloating and the table says
// the figure is not measured. To fill in:
//
//   - placeFloating creates a few continuous floating jobs per host (2 × N, say)
//     ("exec sleep 3600") through the first host, waits until the fleet has
//     placed every one on a live host (each listed running, with its host),
//     and returns each job's host;
//   - runsOn reads, through the watcher (its listing, fleet-wide by then),
//     the host a job runs on: "" while it runs on none.
//
// waitMoved needs nothing more. A victim is a partitioned Manager, not a
// dead one: it self-fences, stopping its floating runs before its lease
// ends, which is what a claim after lease plus grace relies on.

// errNoFloating says why the failover of floating jobs is not measured.
var errNoFloating = errors.New("needs floating jobs")

// placeFloating creates the fleet's floating jobs and returns where each runs.
func placeFloating(ctx context.Context, r *round) (map[string]string, error) {
	return nil, errNoFloating
}

// runsOn names the host that runs floating job name, as h lists it; "" while none does.
func runsOn(h *host, name string) (string, error) {
	return "", errNoFloating
}
