package procman

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// legacyJobRow is a job as the schema kept it before definitions were
// stored as JSON, a column per field: what definitionsAsJSON reads.
type legacyJobRow struct {
	bun.BaseModel `bun:"table:jobs"`

	Name           string            `bun:"name,pk"`
	Command        string            `bun:"command"`
	Type           string            `bun:"type"`
	Schedule       string            `bun:"schedule"`
	Dir            string            `bun:"dir"`
	Env            map[string]string `bun:"env,type:json"`
	StopSignal     string            `bun:"stop_signal"`
	StopTimeout    time.Duration     `bun:"stop_timeout"`
	BackoffInitial time.Duration     `bun:"backoff_initial"`
	BackoffMax     time.Duration     `bun:"backoff_max"`
	MinUptime      time.Duration     `bun:"min_uptime"`
	MaxRetries     int               `bun:"max_retries"`
	KeepRuns       int               `bun:"keep_runs"`
	MaxLogBytes    int64             `bun:"max_log_bytes"`
	Overlap        string            `bun:"overlap"`
	RunAs          string            `bun:"run_as"`
	EnvFile        string            `bun:"env_file"`
	MaxRunLogBytes int64             `bun:"max_run_log_bytes"`
}

// definitionsAsJSON writes every job's definition into the def column, as
// the API would write it, then drops the columns it came from.
func definitionsAsJSON(ctx context.Context, tx bun.Tx) error {
	var rows []legacyJobRow
	if err := tx.NewSelect().Model(&rows).Scan(ctx); err != nil {
		return err
	}
	for _, r := range rows {
		def, err := json.Marshal(Job{
			Name: r.Name, Command: r.Command, Type: Type(r.Type), Schedule: r.Schedule, Dir: r.Dir,
			Env: r.Env, StopSignal: r.StopSignal, StopTimeout: Duration(r.StopTimeout),
			BackoffInitial: Duration(r.BackoffInitial), BackoffMax: Duration(r.BackoffMax),
			MinUptime: Duration(r.MinUptime), MaxRetries: r.MaxRetries, KeepRuns: r.KeepRuns,
			MaxLogBytes: r.MaxLogBytes, Overlap: Overlap(r.Overlap), User: r.RunAs, EnvFile: r.EnvFile,
			MaxRunLogBytes: r.MaxRunLogBytes,
		})
		if err != nil {
			return fmt.Errorf("job %q: %w", r.Name, err)
		}
		if _, err := tx.NewUpdate().Table("jobs").Set("def = ?", string(def)).Where("name = ?", r.Name).Exec(ctx); err != nil {
			return err
		}
	}
	for _, c := range []string{"command", "type", "schedule", "dir", "env", "stop_signal", "stop_timeout",
		"backoff_initial", "backoff_max", "min_uptime", "max_retries", "keep_runs", "max_log_bytes", "overlap",
		"run_as", "env_file", "max_run_log_bytes"} {
		if _, err := tx.ExecContext(ctx, "ALTER TABLE jobs DROP COLUMN "+c); err != nil {
			return fmt.Errorf("drop column %s: %w", c, err)
		}
	}
	return nil
}
