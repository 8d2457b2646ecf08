package procman

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// The jobs file (Config.JobsFile): a document that Open applies before it
// starts any job, and that Reload applies again, each time as the file's
// own: its source is the path as given, and the jobs of that source the
// file no longer has are pruned.

// Reload reads Config.JobsFile again and applies it, pruning the jobs it no
// longer has; a changed running job takes its new definition at its next
// start. A file that cannot be read or has any problem changes nothing: the
// error says why (and lists every problem, as Apply does). Either way the
// outcome is logged, with the plan, and kept in the metrics
// procman_config_last_reload_successful and
// procman_config_last_reload_success_timestamp_seconds. The procman binary
// calls it on SIGHUP.
func (m *Manager) Reload(ctx context.Context) (Plan, error) {
	if m.cfg.JobsFile == "" {
		return Plan{}, fmt.Errorf("%w: reload: no jobs file (Config.JobsFile) to read", ErrInvalid)
	}
	return m.applyJobsFile(ctx, ApplyOptions{})
}

// applyJobsFile reads and applies the jobs file, logs what it did and
// records its outcome.
func (m *Manager) applyJobsFile(ctx context.Context, opts ApplyOptions) (Plan, error) {
	path := m.cfg.JobsFile
	opts.Source, opts.Prune = path, true
	plan, err := m.readAndApply(ctx, path, opts)
	m.metrics.reloaded(err == nil, time.Now())
	if err != nil {
		attrs := []any{"file", path, "err", err}
		if fes := FieldErrors(err); len(fes) > 0 {
			attrs = []any{"file", path, "problems", len(fes)}
			for _, fe := range fes {
				m.log.Error("jobs file: "+fe.Error(), "file", path)
			}
		}
		m.log.Error("jobs file not applied; nothing changed", attrs...)
		return Plan{}, err
	}
	updated := make([]string, len(plan.Updated))
	for i, u := range plan.Updated {
		updated[i] = u.Name
		for _, f := range u.Fields {
			m.log.Info("jobs file: changed", "job", u.Name, "field", f.Field, "old", string(f.Old), "new", string(f.New))
		}
	}
	m.log.Info("jobs file applied", "file", path, "created", plan.Created, "updated", updated,
		"deleted", plan.Deleted, "unchanged", len(plan.Unchanged))
	return plan, nil
}

func (m *Manager) readAndApply(ctx context.Context, path string, opts ApplyOptions) (Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Plan{}, fmt.Errorf("jobs file: %w", err)
	}
	doc, err := ParseDocument(data, FormatOf(path))
	if err != nil {
		return Plan{}, err
	}
	return m.Apply(ctx, doc, opts)
}

// applyAtOpen applies the jobs file, if any, before any job starts: the
// reboot and resumed jobs then start as the file says.
func (m *Manager) applyAtOpen(ctx context.Context) error {
	if m.cfg.JobsFile == "" {
		return nil
	}
	_, err := m.applyJobsFile(ctx, ApplyOptions{noStart: true})
	if err != nil && !errors.Is(err, ErrInvalid) {
		err = fmt.Errorf("jobs file %s: %w", m.cfg.JobsFile, err)
	}
	return err
}
