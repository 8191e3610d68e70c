// Polling with a loop: probe for an upstream partition that has no artifact announcement
// (a vendor drop, a partner's bucket), sleeping between probes, until it is there or the
// probe budget is spent; then load it or raise the alarm (an xor on the probe's output
// parameter). The upstream is simulated: the partition "arrives" after `arrivesAfterProbes`
// probes. Runs anywhere with /bin/sh:
//   mesonctl run examples/wait-for-partition.yaml --param arrivesAfterProbes=10   # fails, alerting
import {
  Condition,
  DataArtifact,
  Notification,
  Otherwise,
  Parameter,
  Shell,
  Trigger,
  Workflow,
} from '../src/dsl/index.ts';

const probePartition = Shell('probePartition', {
  script: [
    'set -eu',
    'mkdir -p "${landingDir}"',
    // simulation of the upstream: the file appears on the probe numbered arrivesAfterProbes
    'if [ ${LOOP_INDEX} -ge ${arrivesAfterProbes} ]; then echo "vendor data" > "${landingDir}/part-0000.csv"; fi',
    'if [ -f "${landingDir}/part-0000.csv" ]; then',
    '  echo "probe ${LOOP_INDEX}: partition ${dateint} has landed"',
    '  echo "ready=true" >> "$MESON_OUTPUTS"',
    'else',
    '  echo "probe ${LOOP_INDEX}: partition ${dateint} not there yet"',
    '  echo "ready=false" >> "$MESON_OUTPUTS"',
    '  sleep ${probeIntervalSeconds}',
    'fi',
  ],
  resources: { cpus: 0.1, memory: '32Mi' },
});

const loadPartition = Shell('loadPartition', {
  script: [
    'set -eu',
    'mkdir -p "${warehouseDir}/vendor_drop/dateint=${dateint}"',
    'cp "${landingDir}/part-0000.csv" "${warehouseDir}/vendor_drop/dateint=${dateint}/"',
    'echo "loaded the vendor drop of ${dateint}"',
  ],
  outputs: [DataArtifact('vendorDrop', { dateint: '${dateint}' })],
});

const alertMissingData = Shell(
  'alertMissingData',
  'echo "partition ${dateint} still missing after ${maxProbes} probes" >&2; exit 1',
);

export default Workflow({
  id: 'wait-for-partition',
  description: 'Poll for a vendor drop, then load it or fail loudly',
  // loaded paused by `npm start`: resume with `suspend: false` to let the trigger fire
  suspend: true,
  triggers: [Trigger.cron('0 0 6 * * ?', { timezone: 'Europe/Amsterdam' })],
  notification: Notification.webhook('http://hooks.example.com/meson', { on: ['failure', 'stopped'] }),
  parameters: [
    Parameter.long({ name: 'dateint', expression: "tsToDateInt(RUN_TS, 'Europe/Amsterdam')" }),
    Parameter.long('maxProbes', 6),
    Parameter.long('probeIntervalSeconds', 1),
    Parameter.long('arrivesAfterProbes', 2),
    Parameter.string({ name: 'landingDir', expression: "'/tmp/meson-examples/landing/' + RUN_ID" }),
    Parameter.string('warehouseDir', '/tmp/meson-examples/warehouse'),
  ],
  definition: Shell('start', 'echo "waiting for the vendor drop of ${dateint}"')
    .loop(
      // maxIterations is the hard ceiling; the `while` stops earlier so that the xor decides
      { while: '!steps.probePartition.outputs.ready && LOOP_INDEX + 1 < maxProbes', maxIterations: 50 },
      probePartition,
    )
    .xor(Condition('steps.probePartition.outputs.ready').branch(loadPartition), Otherwise(alertMissingData))
    .end(),
});
