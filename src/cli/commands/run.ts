// `mesonctl run FILE [--param k=v]... [--json]`: runs the workflow in FILE to completion,
// in-process, with local executors and a temporary store. Exit 0 Succeeded, 1 Failed or
// Stopped, 2 invalid input. --json prints the final WorkflowRun (with its step instances).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { applyManifests, type LoadedManifests, manifestsFromText } from '../../controller/manifests.ts';
import { checkRunStart } from '../../controller/run-check.ts';
import { createStandalone } from '../../controller/standalone.ts';
import { API_VERSION, type Workflow, type WorkflowRun } from '../../crds/index.ts';
import type { Stored } from '../../store/types.ts';
import type { Command } from '../cli.ts';
import { RUN_LIMIT_OPTIONS, runLimitsFrom, runLimitUsage } from '../limits.ts';
import { manifestText } from '../sources.ts';
import { parseStepOptions, STEP_OPTIONS, STEP_OPTIONS_USAGE, type StepOptions } from '../step-options.ts';

const USAGE = `usage: mesonctl run FILE... [--param k=v]... [--workflow NAME] [--json] [--data-dir DIR]

FILE is a YAML manifest file, - (stdin), or a TypeScript DSL program (FILE.ts, synthesised
in-process as mesonctl synth would).

Runs the workflow in FILE (the first Workflow of the first FILE, or --workflow NAME; the other
Workflows of every FILE are available as subworkflows, DataArtifacts are announced) to
completion with local executors.
--param values are parsed as JSON where they parse, else taken as strings.
Exit status: 0 Succeeded, 1 Failed or Stopped, 2 invalid input.
Steps run in the current directory, with a clean environment; copy steps read and write only
under the current directory, the --copy-root directories and the --copy-root s3:// prefixes.

Run limits (as for mesonctl server):
${runLimitUsage()}

${STEP_OPTIONS_USAGE}`;

const TERMINAL = new Set(['Succeeded', 'Failed', 'Stopped']);

export function parseParam(raw: string): { name: string; value: unknown } {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new Error(`--param ${raw}: expected k=v`);
  const text = raw.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = text;
  }
  return { name: raw.slice(0, eq), value };
}

export const runCommand: Command = async (args, io) => {
  let parsed: ReturnType<typeof parse>;
  let params: { name: string; value: unknown }[];
  let runLimits: ReturnType<typeof runLimitsFrom>;
  let steps: StepOptions;
  try {
    parsed = parse(args);
    params = (parsed.values.param ?? []).map(parseParam);
    runLimits = runLimitsFrom(parsed.values, io.env);
    steps = parseStepOptions(parsed.values, io.env, io.cwd);
  } catch (err) {
    io.stderr(`mesonctl run: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed.values.help) {
    io.stdout(USAGE);
    return 0;
  }
  const files = parsed.positionals;
  const file = files[0];
  if (!file) {
    io.stderr(`mesonctl run: expected a FILE\n${USAGE}`);
    return 2;
  }
  const manifests: LoadedManifests = { workflows: [], artifacts: [], runs: [], errors: [] };
  for (const f of files) {
    let m: LoadedManifests;
    try {
      m = manifestsFromText(await manifestText(f, io), f);
    } catch (err) {
      io.stderr(`mesonctl run: ${(err as Error).message}\n`);
      return 2;
    }
    manifests.workflows.push(...m.workflows);
    manifests.artifacts.push(...m.artifacts);
    manifests.runs.push(...m.runs);
    manifests.errors.push(...m.errors);
  }
  if (manifests.errors.length > 0) {
    for (const e of manifests.errors)
      io.stderr(`${e.file}: ${e.path}: ${e.message}${e.line ? ` (line ${e.line})` : ''}\n`);
    return 2;
  }
  const wanted = parsed.values.workflow;
  const target = wanted
    ? manifests.workflows.find((w) => w.metadata.name === wanted)
    : manifests.workflows[0];
  if (!target) {
    io.stderr(
      `mesonctl run: ${file}: ${wanted ? `no Workflow named "${wanted}"` : 'no Workflow in the file'}\n`,
    );
    return 2;
  }
  const ownDir = parsed.values['data-dir'] === undefined;
  const dataDir = ownDir ? mkdtempSync(join(tmpdir(), 'mesonctl-run-')) : parsed.values['data-dir']!;
  // triggers off: the file's cron and artifact triggers must not start other runs meanwhile
  let standalone: ReturnType<typeof createStandalone>;
  try {
    standalone = createStandalone({ dataDir, cwd: io.cwd, pollMs: 50, triggers: false, runLimits, ...steps });
  } catch (err) {
    io.stderr(`mesonctl run: ${(err as Error).message}\n`);
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    return 2;
  }
  // executors and the controller's timers are unref'd (they must not hold a server open);
  // here the process must live until the run ends
  const keepAlive = setInterval(() => {}, 60_000);
  let removeSignalHandlers = () => {};
  try {
    const ns = target.metadata.namespace ?? 'default';
    applyManifests(standalone.store, { ...manifests, runs: [] }, Date.now(), ns);
    const wf = standalone.store.get<Workflow>('Workflow', ns, target.metadata.name!);
    const ready = (wf?.status as { conditions?: { status: string; message?: string }[] } | undefined)
      ?.conditions?.[0];
    if (!wf || ready?.status !== 'True') {
      io.stderr(`${file}: ${ready?.message ?? 'the workflow could not be versioned'}\n`);
      return 2;
    }
    // bad --param values are invalid input (exit 2), not a run that fails
    const issues = checkRunStart(
      standalone.store,
      wf,
      { parameters: params as WorkflowRun['spec']['parameters'] },
      Date.now(),
      runLimits,
    );
    if (issues.length > 0) {
      for (const i of issues)
        io.stderr(`${file}: ${i.path.replace(/^parameters\./, '--param ')}: ${i.message}\n`);
      return 2;
    }
    const done = new Promise<Stored<WorkflowRun>>((resolve) => {
      standalone.store.watch((c) => {
        const r = c.object as Stored<WorkflowRun>;
        if (
          c.kind === 'WorkflowRun' &&
          r.metadata.name === runName &&
          r.status?.phase &&
          TERMINAL.has(r.status.phase)
        ) {
          resolve(r);
        }
      });
    });
    let runName = '';
    standalone.start();
    const run = standalone.store.create<WorkflowRun>('WorkflowRun', {
      apiVersion: API_VERSION,
      kind: 'WorkflowRun',
      metadata: { generateName: `${target.metadata.name}-`, namespace: ns },
      spec: {
        workflow: target.metadata.name!,
        parameters: params as WorkflowRun['spec']['parameters'],
        initiator: { type: 'manual', user: io.env.USER ?? 'mesonctl' },
      },
    });
    runName = run.metadata.name;
    // Ctrl-C stops the run (its steps are killed: executors are detached and would outlive us),
    // then reports it as usual; a second Ctrl-C exits at once
    let interrupted = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (interrupted) process.exit(130);
      interrupted = true;
      io.stderr(`mesonctl run: ${signal}: stopping run ${runName} (again to exit at once)\n`);
      const cur = standalone.store.get<WorkflowRun>('WorkflowRun', ns, runName);
      if (cur && !cur.spec.stop)
        standalone.store.update('WorkflowRun', { ...cur, spec: { ...cur.spec, stop: true } });
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    removeSignalHandlers = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    // a run that only waits for inputs would wait silently forever: say what it waits for
    const told = new Set<string>();
    const explain = setInterval(() => {
      const counts = standalone.store.countStepInstances(ns, runName);
      if ((counts.Running ?? 0) + (counts.Queued ?? 0) + (counts.Pending ?? 0) > 0) return;
      for (const w of standalone.controller.waitingFor(ns, runName)) {
        if (told.has(w.instance)) continue;
        told.add(w.instance);
        io.stderr(
          `mesonctl run: step ${w.instance} is waiting for ${w.inputs.join(', ')}: add DataArtifact documents to the files to announce them (Ctrl-C stops the run)\n`,
        );
      }
    }, 2000);
    const final = await done.finally(() => clearInterval(explain));
    const steps = standalone.store.getStepInstances(ns, runName).items.map((s) => s.data);
    if (parsed.values.json) {
      io.stdout(`${JSON.stringify({ ...final, status: { ...final.status, steps } }, null, 2)}\n`);
    } else {
      io.stdout(
        `run ${runName}: ${final.status?.phase}${final.status?.message ? ` (${final.status.message})` : ''}\n`,
      );
      for (const s of steps as { id: string; phase: string; message?: string }[]) {
        io.stdout(`  ${s.id.padEnd(24)} ${s.phase}${s.message ? `  ${s.message}` : ''}\n`);
      }
    }
    if (final.status?.phase === 'Succeeded') return 0;
    // a run that could not even start (bad parameters) is invalid input
    return final.status?.conditions?.some((c) => c.reason === 'StartFailed') ? 2 : 1;
  } finally {
    removeSignalHandlers();
    clearInterval(keepAlive);
    standalone.stop();
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  }
};

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      param: { type: 'string', multiple: true, short: 'p' },
      ...RUN_LIMIT_OPTIONS,
      workflow: { type: 'string' },
      json: { type: 'boolean' },
      'data-dir': { type: 'string' },
      ...STEP_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
}
