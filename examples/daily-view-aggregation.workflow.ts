// The seed talk's "my-cool-workflow", grown up: every day at midnight Pacific time, aggregate
// one country's views with Spark once the day's `views` partition has been announced, publish
// the aggregate, and announce it as `aggViews` (which triggers examples/feature-pipeline).
// Needs `spark-submit` on PATH to run locally; the other steps use POSIX tools only.
import {
  Copy,
  DataArtifact,
  Notification,
  Parameter,
  Shell,
  Spark,
  Trigger,
  Workflow,
} from '../src/dsl/index.ts';

const partition = { country: '${country}', dateint: '${dateint}' };

const aggregateViews = Spark('aggregateViews', {
  jobClass: 'com.example.views.DailyViewAggregation',
  args: ['--country', '${country}', '--dateint', '${dateint}', '--out', '${warehouse}/agg_views'],
  conf: { 'spark.sql.shuffle.partitions': '200', 'spark.dynamicAllocation.enabled': 'false' },
  driverMemory: '8g',
  executorMemory: '8g',
  executors: 10,
  inputs: [DataArtifact('views', partition)],
  // a day that never lands fails the run by the next morning instead of waiting forever
  inputsTimeoutSeconds: 18 * 3600,
  resources: { cpus: 2, memory: '10Gi' },
  retry: { limit: 3, backoff: { initialSeconds: 60, factor: 2, maxSeconds: 900 } },
  timeoutSeconds: 7200,
});

const publishAggregates = Copy('publishAggregates', {
  from: '${warehouse}/agg_views/dateint=${dateint}/country=${country}',
  to: '${warehouse}/published/agg_views/dateint=${dateint}/country=${country}',
  outputs: [
    DataArtifact('aggViews', partition, {
      location: '${warehouse}/published/agg_views/dateint=${dateint}/country=${country}',
    }),
  ],
  retry: 2,
});

const reportRows = Shell('reportRows', {
  script: [
    'set -eu',
    'dir=$(echo "${warehouse}/published/agg_views/dateint=${dateint}/country=${country}" | sed "s|^file://||")',
    'rows=$(cat "$dir"/* 2>/dev/null | wc -l | tr -d " ")',
    'echo "published $rows aggregate rows for ${country} on ${dateint}"',
    'echo "rows=$rows" >> "$MESON_OUTPUTS"',
  ],
  resources: { cpus: 0.1, memory: '64Mi' },
});

export default Workflow({
  id: 'daily-view-aggregation',
  description: 'Daily per-country view aggregation (the seed talk workflow)',
  annotations: { 'meson.dev/scm-commit': '3f2c1e9' },
  // loaded paused by `npm start`: resume with `suspend: false` to let the trigger fire
  suspend: true,
  triggers: [Trigger.cron('0 0 0 1/1 * ? *', { timezone: 'America/Los_Angeles' })],
  notification: Notification.webhook('http://hooks.example.com/meson', {
    on: ['start', 'success', 'failure'],
  }),
  parameters: [
    Parameter.string('country', 'US'),
    Parameter.long({
      name: 'dateint',
      expression: "dateIntAdd(tsToDateInt(RUN_TS, 'America/Los_Angeles'), -1)",
    }),
    Parameter.string('warehouse', 'file:///tmp/meson-examples/warehouse'),
  ],
  // one day at a time: a late day queues behind the one before it
  concurrency: { maxActiveRuns: 1, policy: 'queue' },
  definition: aggregateViews.sequence(publishAggregates).sequence(reportRows).end(),
});
