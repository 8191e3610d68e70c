// A data quality gate: when a day of metrics is announced (examples/backfill-daily-metrics
// announces `dailyMetrics`), run three checks at once, then every remediation whose condition
// holds (an `or`: several may run, at once, so each writes its own file; `allChecksPassed`
// when none does), and publish a report.
// The sample data is generated with awk, with a few defects, so that the branches have
// something to find. Runs anywhere with /bin/sh:
//   mesonctl run examples/data-quality-gate.yaml --param maxNullPct=5   # no quarantine
import {
  Condition,
  DataArtifact,
  Noop,
  Notification,
  Otherwise,
  Parameter,
  Shell,
  Trigger,
  Workflow,
} from '../src/dsl/index.ts';

const tiny = { cpus: 0.2, memory: '64Mi' };

const sampleData = Shell('sampleData', {
  script: [
    'set -eu',
    'mkdir -p "${workdir}"',
    // member,country,minutes: every 97th row lacks minutes, every 500th row is repeated
    'awk -v seed="${dateint}" \'BEGIN { srand(seed); for (i = 1; i <= 2000; i++) { m = (i % 97 == 0) ? "" : int(rand() * 300); print i ",US," m; if (i % 500 == 0) print i ",US," m } }\' > "${workdir}/sample.csv"',
  ],
  resources: tiny,
});

const checkRowCount = Shell('checkRowCount', {
  script: ['echo "rows=$(wc -l < "${workdir}/sample.csv" | tr -d " ")" >> "$MESON_OUTPUTS"'],
  resources: tiny,
});

const checkNullRate = Shell('checkNullRate', {
  script: [
    'pct=$(awk -F, \'$3 == "" { n++ } END { printf "%.2f", n / NR * 100 }\' "${workdir}/sample.csv")',
    'echo "null minutes: $pct%"',
    'echo "nullPct=$pct" >> "$MESON_OUTPUTS"',
  ],
  resources: tiny,
});

const checkDuplicates = Shell('checkDuplicates', {
  script: [
    'echo "duplicates=$(sort "${workdir}/sample.csv" | uniq -d | wc -l | tr -d " ")" >> "$MESON_OUTPUTS"',
  ],
  resources: tiny,
});

export default Workflow({
  id: 'data-quality-gate',
  description: 'Row count, null rate and duplicate checks on a day of metrics, with remediation',
  // loaded paused by `npm start`: resume with `suspend: false` to let the trigger fire
  suspend: true,
  triggers: [Trigger.artifact('dailyMetrics')],
  notification: Notification.webhook('http://hooks.example.com/meson', { on: ['failure'] }),
  parameters: [
    Parameter.long({
      name: 'dateint',
      // the date of the partition that triggered the run; by hand: yesterday
      expression:
        'TRIGGER.artifacts?.[0]?.partition?.dateint != null ? long(TRIGGER.artifacts[0].partition.dateint) : dateIntAdd(tsToDateInt(RUN_TS), -1)',
    }),
    Parameter.long('minRows', 1500),
    Parameter.double('maxNullPct', 0.5),
    Parameter.string({ name: 'workdir', expression: "'/tmp/meson-examples/data-quality/' + RUN_ID" }),
  ],
  definition: sampleData
    .parallel(checkRowCount, checkNullRate, checkDuplicates)
    .or(
      Condition('steps.checkRowCount.outputs.rows < minRows').branch(
        Shell(
          'flagLowVolume',
          'echo "only ${steps.checkRowCount.outputs.rows} rows (want ${minRows})" >&2; exit 1',
        ),
      ),
      // a branch of two steps, opened by .branch() and finished by .end()
      Condition('steps.checkNullRate.outputs.nullPct > maxNullPct')
        .branch()
        .sequence(
          Shell('quarantineNullRows', [
            'set -eu',
            'awk -F, \'$3 == ""\' "${workdir}/sample.csv" > "${workdir}/quarantine.csv"',
            'echo "quarantined $(wc -l < "${workdir}/quarantine.csv" | tr -d " ") rows without minutes"',
          ]),
        )
        .sequence(
          Shell(
            'notifyDataOwner',
            'echo "${steps.checkNullRate.outputs.nullPct}% of rows lack minutes (limit ${maxNullPct}%): see ${workdir}/quarantine.csv"',
          ),
        )
        .end(),
      Condition('steps.checkDuplicates.outputs.duplicates > 0').branch(
        Shell('listDuplicates', [
          'set -eu',
          'sort "${workdir}/sample.csv" | uniq -d > "${workdir}/duplicates.csv"',
          'echo "${steps.checkDuplicates.outputs.duplicates} duplicated rows listed in ${workdir}/duplicates.csv"',
        ]),
      ),
      Otherwise(Noop('allChecksPassed')),
    )
    .sequence(
      Shell('publishReport', {
        script: [
          'set -eu',
          'report="${workdir}/report.txt"',
          'echo "dateint=${dateint} rows=${steps.checkRowCount.outputs.rows} nullPct=${steps.checkNullRate.outputs.nullPct} duplicates=${steps.checkDuplicates.outputs.duplicates}" > "$report"',
          'cat "$report"',
        ],
        outputs: [
          DataArtifact('qualityReport', { dateint: '${dateint}' }, { location: '${workdir}/report.txt' }),
        ],
        resources: tiny,
      }),
    )
    .end(),
});
