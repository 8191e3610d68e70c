// Automated model release with a canary (the seed talk's "automated releases with canary
// workflows"): score a traffic sample with the candidate and with the production model (two
// runs of one scoring workflow, as subworkflows in parallel), compare, and promote or roll
// back. One program, two workflows: the file holds both documents.
// Runs anywhere with /bin/sh:
//   mesonctl run examples/model-release-canary.yaml
import {
  Condition,
  Notification,
  Otherwise,
  Parameter,
  Shell,
  Subworkflow,
  Trigger,
  Workflow,
} from '../src/dsl/index.ts';

export const canaryScoring = Workflow({
  id: 'canary-scoring',
  description: 'Score a traffic sample with one model version; write its metrics to resultsDir',
  parameters: [
    Parameter.string('modelVersion', 'production'),
    Parameter.long('sampleSize', 2000),
    Parameter.string('resultsDir', '/tmp/meson-examples/canary/manual'),
  ],
  definition: Shell('scoreSample', {
    script: [
      'set -eu',
      'mkdir -p "${resultsDir}"',
      // a stand-in for scoring: a deterministic pseudo-random mean error per model version
      'seed=$(printf %s "${modelVersion}" | cksum | cut -d " " -f 1)',
      'awk -v seed="$seed" -v n="${sampleSize}" \'BEGIN { srand(seed); s = 0; for (i = 0; i < n; i++) s += rand(); printf "%.4f\\n", s / n }\' > "${resultsDir}/${modelVersion}.error"',
      'echo "model ${modelVersion}: mean error $(cat "${resultsDir}/${modelVersion}.error")"',
    ],
    resources: { cpus: 1, memory: '512Mi' },
    retry: 1,
  }),
});

const resolveCandidate = Shell('resolveCandidate', [
  'set -eu',
  'echo "candidate=ctr-${dateint}" >> "$MESON_OUTPUTS"',
]);

const scoreCandidate = Subworkflow('scoreCandidate', {
  workflow: canaryScoring,
  parameters: [
    Parameter.expr('modelVersion', 'steps.resolveCandidate.outputs.candidate'),
    Parameter.expr('resultsDir', 'resultsDir'),
  ],
});

const scoreProduction = Subworkflow('scoreProduction', {
  workflow: canaryScoring,
  parameters: [Parameter.of('modelVersion', 'production'), Parameter.expr('resultsDir', 'resultsDir')],
});

const compareMetrics = Shell('compareMetrics', [
  'set -eu',
  'candidate=$(cat "${resultsDir}/${steps.resolveCandidate.outputs.candidate}.error")',
  'production=$(cat "${resultsDir}/production.error")',
  'pct=$(awk -v c="$candidate" -v p="$production" \'BEGIN { printf "%.2f", (c - p) / p * 100 }\')',
  'echo "candidate error $candidate, production error $production: regression $pct%"',
  'echo "regressionPct=$pct" >> "$MESON_OUTPUTS"',
]);

export const modelReleaseCanary = Workflow({
  id: 'model-release-canary',
  description: 'Canary a freshly trained model against production; promote or roll back',
  // loaded paused by `npm start`: resume with `suspend: false` to let the trigger fire
  suspend: true,
  triggers: [Trigger.artifact('ctrModel')],
  notification: Notification.webhook('http://hooks.example.com/meson', {
    on: ['success', 'failure', 'stopped'],
  }),
  parameters: [
    Parameter.long({
      name: 'dateint',
      // the date of the partition that triggered the run; by hand: today
      expression:
        'TRIGGER.artifacts?.[0]?.partition?.dateint != null ? long(TRIGGER.artifacts[0].partition.dateint) : tsToDateInt(RUN_TS)',
    }),
    Parameter.double('maxRegressionPct', 1.0),
    Parameter.string({ name: 'resultsDir', expression: "'/tmp/meson-examples/canary/' + RUN_ID" }),
  ],
  concurrency: { maxActiveRuns: 1, policy: 'queue' },
  definition: resolveCandidate
    .parallel(scoreCandidate, scoreProduction)
    .sequence(compareMetrics)
    .xor(
      Condition('steps.compareMetrics.outputs.regressionPct <= maxRegressionPct').branch(
        Shell(
          'promoteCandidate',
          'echo "promoting ${steps.resolveCandidate.outputs.candidate} to production"',
        ),
      ),
      Otherwise(
        Shell(
          'rollBackCandidate',
          'echo "keeping production: ${steps.resolveCandidate.outputs.candidate} regresses by ${steps.compareMetrics.outputs.regressionPct}%"',
        ),
      ),
    )
    .end(),
});

// the release first: `mesonctl run` runs the first Workflow of a file, the others are its subworkflows
export default [modelReleaseCanary, canaryScoring];
