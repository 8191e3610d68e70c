// A/B test orchestration: train the control and the treatment cell of an experiment with
// the same training workflow (examples/model-training-hpo, run as two subworkflows at once,
// the control pinned to version 1 of it), then allocate traffic. The child workflow must be
// known to Meson: apply or load examples/model-training-hpo.yaml too.
import {
  Notification,
  Parameter,
  parallel,
  Shell,
  Subworkflow,
  Trigger,
  Workflow,
} from '../src/dsl/index.ts';
import modelTraining from './model-training-hpo.workflow.ts';

const trainControl = Subworkflow('trainControl', {
  workflow: modelTraining,
  version: 1,
  parameters: [
    Parameter.expr('learningRates', 'controlRates'),
    Parameter.expr('modelStore', "reportDir + '/control'"),
  ],
  timeoutSeconds: 7200,
});

const trainTreatment = Subworkflow('trainTreatment', {
  workflow: modelTraining,
  parameters: [
    Parameter.expr('learningRates', 'treatmentRates'),
    Parameter.expr('modelStore', "reportDir + '/treatment'"),
    Parameter.double('minAuc', 0.78),
  ],
  timeoutSeconds: 7200,
});

export default Workflow({
  id: 'ab-test-orchestration',
  description: 'Train both cells of a learning-rate A/B test, then allocate traffic',
  // loaded paused by `npm start`: resume with `suspend: false` to let the trigger fire
  suspend: true,
  triggers: [Trigger.cron('0 0 4 ? * MON', { timezone: 'America/Los_Angeles' })],
  notification: Notification.webhook('http://hooks.example.com/meson', {
    on: ['start', 'success', 'failure'],
  }),
  parameters: [
    Parameter.string('experiment', 'ctr-lr-sweep'),
    Parameter.list('controlRates', [0.03]),
    Parameter.list('treatmentRates', [0.01, 0.1]),
    Parameter.long('treatmentPercent', 5),
    Parameter.string({ name: 'reportDir', expression: "'/tmp/meson-examples/ab-tests/' + experiment" }),
  ],
  definition: Shell('registerExperiment', [
    'set -eu',
    'mkdir -p "${reportDir}"',
    'echo "experiment ${experiment}: control ${join(controlRates)} vs treatment ${join(treatmentRates)}" | tee "${reportDir}/experiment.txt"',
  ])
    .sequence(parallel(trainControl, trainTreatment))
    .sequence(
      Shell('allocateTraffic', [
        'set -eu',
        'echo "allocating ${treatmentPercent}% of traffic to the treatment cell of ${experiment}" | tee -a "${reportDir}/experiment.txt"',
        'ls "${reportDir}/control" "${reportDir}/treatment" 2>/dev/null || echo "(a cell published no model: it stays on the current one)"',
      ]),
    ),
});
