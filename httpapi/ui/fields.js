// The fields of a job definition, as the dashboard edits and shows them.

// FIELDS is the job form, one line a field, in the form's order. kind: text,
// area, select, signal, int, env (an object, as KEY=VALUE lines) or json (a
// value written as JSON); only: the
// type a field applies to; wide: a whole row; note: beside the label; hint:
// under the input.
export const FIELDS = [
  { f: 'name', label: 'Name', kind: 'text', placeholder: 'web' },
  { f: 'type', label: 'Type', kind: 'select', options: [['one_time', 'one_time: runs once per start'], ['continuous', 'continuous: restarted whenever it exits']] },
  { f: 'command', label: 'Command', note: '(run as /bin/sh -c)', kind: 'area', wide: true, placeholder: 'python3 -m http.server 8080' },
  { f: 'schedule', label: 'Schedule', kind: 'text', placeholder: 'manual', list: ['reboot', 'manual', '@hourly', '@daily', '@every 5m', '*/5 * * * *'], hint: 'reboot, manual, or cron: */5 * * * *, @daily, @every 90s' },
  { f: 'overlap', label: 'Overlap', kind: 'select', only: 'one_time', options: [['', 'default (skip)'], 'skip', 'queue', 'restart'], hint: 'with a cron schedule: what a tick does while the last run goes' },
  { f: 'labels', label: 'Labels', note: '(KEY=VALUE, one a line)', kind: 'env', wide: true, placeholder: 'tier=web', hint: 'for selectors: tier=web,!canary' },
  { f: 'depends_on', label: 'Depends on', note: '(JOB=CONDITION, one a line)', kind: 'env', wide: true, placeholder: 'db=healthy', hint: 'started, healthy, completed or completed_successfully' },
  { f: 'host', label: 'Host', kind: 'text', placeholder: 'the one it is created on', hint: 'a host of the fleet, or * for any live one' },
  { f: 'start_timeout', label: 'Start timeout', kind: 'text', placeholder: 'none', hint: 'bounds the wait for depends_on; up to 24h' },
  { f: 'dir', label: 'Working directory', kind: 'text', wide: true, placeholder: "ProcMan's own" },
  { f: 'env', label: 'Environment', note: '(KEY=VALUE, one a line)', kind: 'env', wide: true, placeholder: 'PORT=8080' },
  { f: 'env_file', label: 'Environment file', note: '(KEY=VALUE lines, read at each start)', kind: 'text', wide: true, placeholder: 'none' },
  { f: 'user', label: 'User', note: '(user[:group]; ProcMan must run as root)', kind: 'text', placeholder: "ProcMan's user" },
  { f: 'stop_signal', label: 'Stop signal', kind: 'signal', options: [['', 'default (TERM)'], 'TERM', 'INT', 'HUP', 'QUIT', 'KILL', 'USR1', 'USR2'] },
  { f: 'stop_timeout', label: 'Stop timeout', kind: 'text', placeholder: '10s', hint: 'up to 1h' },
  { f: 'restart', label: 'Restart', kind: 'select', options: [['', 'default (continuous: always; one_time: never)'], 'always', 'on-failure'], hint: 'on-failure: only after a failed run; one_time jobs need max retries' },
  { f: 'success_exit_codes', label: 'Success exit codes', note: '(besides 0)', kind: 'json', placeholder: '[3, 4]' },
  { f: 'max_retries', label: 'Max retries', note: '(0: forever)', kind: 'int', placeholder: '0', hint: 'continuous, or one_time with restart on-failure' },
  { f: 'min_uptime', label: 'Min uptime', kind: 'text', only: 'continuous', placeholder: '10s', hint: 'up to 24h' },
  { f: 'backoff_initial', label: 'Backoff initial', kind: 'text', placeholder: '1s', hint: 'up to 24h; continuous, or one_time with restart on-failure' },
  { f: 'backoff_max', label: 'Backoff max', kind: 'text', placeholder: '1m', hint: 'up to 24h; continuous, or one_time with restart on-failure' },
  { f: 'health', label: 'Health check', note: '(JSON: one of exec, http, tcp; interval, timeout, retries, start_period)', kind: 'json', wide: true, placeholder: '{"exec": "pg_isready -q", "interval": "10s"}' },
  { f: 'on_unhealthy', label: 'On unhealthy', kind: 'select', options: [['', 'default (continuous: restart; one_time: ignore)'], 'restart', 'ignore'] },
  { f: 'keep_runs', label: 'Keep runs', kind: 'int', placeholder: '100' },
  { f: 'max_log_bytes', label: 'Max log bytes', kind: 'int', placeholder: 'no cap' },
  { f: 'max_run_log_bytes', label: 'Max running log bytes', kind: 'int', placeholder: '104857600 (100 MiB)' },
];

export const sigName = (v) => String(v || '').toUpperCase().replace(/^SIG/, '');
export const envText = (env) => Object.keys(env).sort().map((k) => k + '=' + env[k]).join('\n');
