// A backfill-friendly daily job: every night it recomputes the last seven days (late data
// lands for a while), one foreach iteration per day, three days at a time. Each day's output
// is written to a temporary file and moved into place, so re-running a day (a retry, a
// restart, an overlapping backfill) is harmless. To backfill a month:
//   mesonctl run examples/backfill-daily-metrics.yaml --param startDate=20240101 --param endDate=20240131
import { DataArtifact, Notification, Parameter, Shell, Trigger, Workflow } from '../src/dsl/index.ts';

const computeMetrics = Shell('computeMetrics', {
  script: [
    'set -eu',
    'out="${metricsDir}/dateint=${day}"',
    'mkdir -p "$out"',
    // a stand-in for the real computation: a deterministic pseudo-random day of sessions
    'awk -v day="${day}" \'BEGIN { srand(day); for (h = 0; h < 24; h++) printf "%s,%02d,%d\\n", day, h, 1000 + int(rand() * 500) }\' > "$out/metrics.csv.tmp"',
    'mv "$out/metrics.csv.tmp" "$out/metrics.csv"',
    'echo "sessions=$(awk -F, \'{ s += $3 } END { print s }\' "$out/metrics.csv")" >> "$MESON_OUTPUTS"',
  ],
  outputs: [
    DataArtifact(
      'dailyMetrics',
      { dateint: '${day}' },
      { location: '${metricsDir}/dateint=${day}/metrics.csv' },
    ),
  ],
  resources: { cpus: 0.5, memory: '256Mi' },
  retry: { limit: 3, backoff: { initialSeconds: 5, factor: 2, maxSeconds: 120 } },
  timeoutSeconds: 600,
});

const checkDay = Shell('checkDay', [
  'set -eu',
  'hours=$(wc -l < "${metricsDir}/dateint=${day}/metrics.csv" | tr -d " ")',
  'if [ "$hours" -ne 24 ]; then echo "day ${day}: expected 24 hourly rows, found $hours" >&2; exit 1; fi',
]);

const summarize = Shell('summarize', [
  'set -eu',
  'echo "recomputed ${len(dateIntRange(startDate, endDate))} days from ${startDate} to ${endDate} in ${metricsDir}"',
]);

export default Workflow({
  id: 'backfill-daily-metrics',
  description: 'Daily engagement metrics, recomputed over a trailing window; backfill by parameters',
  // loaded paused by `npm start`: resume with `suspend: false` to let the trigger fire
  suspend: true,
  triggers: [Trigger.cron('0 30 2 * * ?', { timezone: 'UTC' })],
  notification: Notification.webhook('http://hooks.example.com/meson', { on: ['failure'] }),
  parameters: [
    Parameter.long({ name: 'endDate', expression: 'dateIntAdd(tsToDateInt(RUN_TS), -1)' }),
    Parameter.long({ name: 'startDate', expression: 'dateIntAdd(endDate, -6)' }),
    Parameter.string('metricsDir', '/tmp/meson-examples/daily-metrics'),
  ],
  // a nightly run that finds a backfill still going is skipped rather than racing it
  concurrency: { maxActiveRuns: 1, policy: 'skip' },
  definition: Shell('announceWindow', 'echo "computing ${startDate}..${endDate}"')
    .foreach(
      { items: 'dateIntRange(startDate, endDate)', as: 'day', parallelism: 3 },
      computeMetrics.sequence(checkDay),
    )
    .sequence(summarize),
});
