// Model training with a hyperparameter sweep: prepare the training and validation sets in
// parallel, train and evaluate one model per learning rate (a foreach, two at a time), select
// the best model from the evaluations' output parameters, and publish it only when it beats
// the quality bar (an xor). Started by the `features` artifact of examples/feature-pipeline,
// or by hand. The "training" is simulated with awk so that it runs anywhere:
//   mesonctl run examples/model-training-hpo.yaml --param 'learningRates=[0.01,0.1]'
import {
  Condition,
  Copy,
  DataArtifact,
  Notification,
  Otherwise,
  Parameter,
  parallel,
  Shell,
  Trigger,
  Workflow,
} from '../src/dsl/index.ts';

const small = { cpus: 0.5, memory: '256Mi' };

const prepareTrainingSet = Shell('prepareTrainingSet', {
  script: [
    'set -eu',
    'mkdir -p "${workdir}"',
    // a synthetic click log: feature x, label y
    'awk -v seed="${dateint}" \'BEGIN { srand(seed); for (i = 0; i < 5000; i++) { x = rand(); print x "," (rand() < x ? 1 : 0) } }\' > "${workdir}/train.csv"',
    'echo "rows=$(wc -l < "${workdir}/train.csv" | tr -d " ")" >> "$MESON_OUTPUTS"',
  ],
  resources: small,
});

const prepareValidationSet = Shell('prepareValidationSet', {
  script: [
    'set -eu',
    'mkdir -p "${workdir}"',
    'awk -v seed="${dateint}" \'BEGIN { srand(seed + 1); for (i = 0; i < 1000; i++) { x = rand(); print x "," (rand() < x ? 1 : 0) } }\' > "${workdir}/validation.csv"',
  ],
  resources: small,
});

const train = Shell('train', {
  script: [
    'set -eu',
    'echo "training with learning rate ${lr} on $(wc -l < "${workdir}/train.csv" | tr -d " ") rows"',
    // a stand-in for training: the model is the base rate of the labels
    'base=$(awk -F, \'{ s += $2 } END { printf "%.4f", s / NR }\' "${workdir}/train.csv")',
    'printf "model lr=%s trained-on=%s base-rate=%s\\n" "${lr}" "${dateint}" "$base" > "${workdir}/model-${lr}.txt"',
  ],
  resources: { cpus: 1, memory: '512Mi' },
  retry: { limit: 2, backoff: { initialSeconds: 5, factor: 2, maxSeconds: 60 } },
  timeoutSeconds: 1800,
  priority: 5,
});

const evaluate = Shell('evaluate', {
  script: [
    'set -eu',
    // a made-up but deterministic AUC that peaks at a learning rate of 0.03
    'auc=$(awk -v lr=${lr} \'BEGIN { d = log(lr / 0.03); printf "%.4f", 0.86 - 0.02 * d * d }\')',
    'echo "${lr} $auc" >> "${workdir}/scores.txt"',
    'echo "auc=$auc" >> "$MESON_OUTPUTS"',
  ],
  resources: small,
});

const selectBest = Shell('selectBest', {
  script: [
    'set -eu',
    'best=$(sort -k2,2nr "${workdir}/scores.txt" | head -n 1)',
    'echo "best model: $best"',
    'echo "bestLr=$(echo "$best" | cut -d " " -f 1)" >> "$MESON_OUTPUTS"',
    'echo "bestAuc=$(echo "$best" | cut -d " " -f 2)" >> "$MESON_OUTPUTS"',
  ],
  resources: small,
});

const publishModel = Copy('publishModel', {
  from: '${workdir}/model-${steps.selectBest.outputs.bestLr}.txt',
  to: '${modelStore}/ctr-model-${dateint}.txt',
  outputs: [
    DataArtifact(
      'ctrModel',
      { dateint: '${dateint}' },
      { location: '${modelStore}/ctr-model-${dateint}.txt' },
    ),
  ],
});

const rejectModel = Shell('rejectModel', [
  'echo "best AUC ${steps.selectBest.outputs.bestAuc} is below ${minAuc}: keeping the current model" >&2',
]);

export default Workflow({
  id: 'model-training-hpo',
  description: 'Click-through model: learning-rate sweep, best-model selection, gated publish',
  // loaded paused by `npm start`: resume with `suspend: false` to let the trigger fire
  suspend: true,
  triggers: [Trigger.artifact('features', { country: 'US' })],
  notification: Notification.webhook('http://hooks.example.com/meson', { on: ['success', 'failure'] }),
  parameters: [
    Parameter.long({
      name: 'dateint',
      // the date of the partition that triggered the run; by hand: today
      expression:
        'TRIGGER.artifacts?.[0]?.partition?.dateint != null ? long(TRIGGER.artifacts[0].partition.dateint) : tsToDateInt(RUN_TS)',
    }),
    Parameter.list('learningRates', [0.003, 0.01, 0.03, 0.1, 0.3]),
    Parameter.double('minAuc', 0.8),
    Parameter.string({ name: 'workdir', expression: "'/tmp/meson-examples/model-training/' + RUN_ID" }),
    Parameter.string('modelStore', '/tmp/meson-examples/models'),
  ],
  // two runs at a time (the A/B test trains both cells at once); more wait their turn
  concurrency: { maxActiveRuns: 2, policy: 'queue' },
  definition: parallel(prepareTrainingSet, prepareValidationSet)
    .foreach({ items: 'learningRates', as: 'lr', parallelism: 2 })
    .sequence(train)
    .sequence(evaluate)
    .end()
    .sequence(selectBest)
    .xor(Condition('steps.selectBest.outputs.bestAuc >= minAuc').branch(publishModel), Otherwise(rejectModel))
    .end(),
});
