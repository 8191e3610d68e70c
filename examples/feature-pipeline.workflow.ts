// A feature pipeline started by data: when examples/daily-view-aggregation announces a US
// `aggViews` partition, extract features in a container, compute embeddings (Spark, on GPU
// nodes) and aggregates (container) in parallel, run the extra checks that apply (an `or`: every
// branch whose condition holds runs), and announce `features`, which starts
// examples/model-training-hpo. Container steps need docker or podman to run locally.
import {
  Condition,
  Container,
  DataArtifact,
  Noop,
  Notification,
  Otherwise,
  Parameter,
  Shell,
  Spark,
  Trigger,
  Workflow,
} from '../src/dsl/index.ts';

const image = 'registry.example.com/ml/feature-jobs:2.3.1';
const partition = { country: '${country}', dateint: '${dateint}' };

const extractFeatures = Container('extractFeatures', {
  image,
  command: ['python', '-m', 'features.extract'],
  args: ['--country', '${country}', '--dateint', '${dateint}', '--out', '${featureStore}/raw'],
  env: { FEATURE_STORE_URL: '${featureStore}', LOG_LEVEL: 'info' },
  inputs: [DataArtifact('aggViews', partition)],
  // a day that never lands fails the run by the next morning instead of waiting forever
  inputsTimeoutSeconds: 18 * 3600,
  resources: { cpus: 4, memory: '16Gi', disk: '50Gi' },
  constraints: { nodeSelector: { 'meson.dev/pool': 'batch' } },
  retry: { limit: 2, backoff: { initialSeconds: 30, factor: 2, maxSeconds: 300 } },
  timeoutSeconds: 3600,
});

const computeEmbeddings = Spark('computeEmbeddings', {
  mainApplication: 'local:///opt/jobs/embeddings.py',
  args: ['--country', '${country}', '--dateint', '${dateint}'],
  conf: { 'spark.executor.resource.gpu.amount': '1', 'spark.task.resource.gpu.amount': '0.25' },
  executorMemory: '16g',
  executors: 8,
  resources: { cpus: 2, memory: '8Gi', gpus: 1 },
  constraints: { nodeSelector: { 'meson.dev/pool': 'gpu' }, attributes: { 'gpu.model': 'a10g' } },
  priority: 10,
});

const computeAggregates = Container('computeAggregates', {
  image,
  command: ['python', '-m', 'features.aggregate'],
  args: ['--country', '${country}', '--dateint', '${dateint}', '--windows', '7,28'],
  resources: { cpus: 2, memory: '8Gi' },
  constraints: { nodeSelector: { 'meson.dev/pool': 'batch' }, uniqueHost: true },
});

const scrubPersonalData = Container('scrubPersonalData', {
  image,
  command: ['python', '-m', 'features.scrub', '--policy', 'gdpr'],
  args: ['--country', '${country}', '--dateint', '${dateint}'],
  resources: { cpus: 1, memory: '4Gi' },
});

const monthlyDriftReport = Shell('monthlyDriftReport', [
  'echo "first day of the month: comparing ${dateint} features against ${dateIntAdd(dateint, -28)}"',
]);

export default Workflow({
  id: 'feature-pipeline',
  description: 'Daily member features: extraction, embeddings, aggregates, compliance checks',
  // loaded paused by `npm start`: resume with `suspend: false` to let the trigger fire
  suspend: true,
  triggers: [Trigger.artifact('aggViews', { country: 'US' })],
  notifications: [
    Notification.webhook('http://hooks.example.com/meson', { on: ['failure', 'stopped'] }),
    Notification.webhook('http://oncall.example.com/pager', { on: ['failure'] }),
  ],
  parameters: [
    Parameter.string('country', 'US'),
    Parameter.long({
      name: 'dateint',
      // the date of the partition that triggered the run; by hand: yesterday
      expression:
        'TRIGGER.artifacts?.[0]?.partition?.dateint != null ? long(TRIGGER.artifacts[0].partition.dateint) : dateIntAdd(tsToDateInt(RUN_TS), -1)',
    }),
    Parameter.string('featureStore', 's3://features.example.com/member'),
  ],
  // a newer partition supersedes a run still busy with an older one
  concurrency: { maxActiveRuns: 1, policy: 'replace' },
  definition: extractFeatures
    .parallel(computeEmbeddings, computeAggregates)
    .or(
      Condition("contains(['DE', 'FR', 'NL'], country)").branch(scrubPersonalData),
      Condition('dayFromDateInt(dateint) == 1').branch(monthlyDriftReport),
      Otherwise(Noop('noExtraChecks')),
    )
    .sequence(
      Noop('featuresReady', {
        outputs: [
          DataArtifact('features', partition, {
            location: '${featureStore}/dateint=${dateint}/country=${country}',
          }),
        ],
      }),
    )
    .end(),
});
