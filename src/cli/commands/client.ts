// The client verbs of mesonctl against a running server (the `argo` CLI's everyday verbs):
// submit, get, logs, stop, restart, backfill. They talk through MesonClient (src/cli/client.ts),
// so that a Kubernetes implementation can serve the same verbs later.
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { Workflow } from '../../crds/index.ts';
import { parseManifests } from '../../crds/validate.ts';
import type { CliIo, Command } from '../cli.ts';
import { ClientError, DEFAULT_SERVER, HttpClient, type MesonClient, type RunObject } from '../client.ts';
import { manifestText } from '../sources.ts';
import { parseParam } from './run.ts';

const COMMON = `Common options:
  --server URL          the server (default MESON_SERVER, else ${DEFAULT_SERVER}); the bearer
                        token is read from MESON_API_TOKEN (never give it on the command line)
  --kube                talk to a cluster's operator through its resources instead, with
                        KUBECONFIG (or ~/.kube/config, or in-cluster); MESON_CLIENT=kube too
  --kubeconfig FILE     the same with this kubeconfig (implies --kube); --context NAME
  -n, --namespace NS    namespace (default MESON_NAMESPACE, else default)
  -o, --output FORMAT   json, yaml or wide (default: a table or tree)`;

const COMMON_OPTIONS = {
  server: { type: 'string' },
  kube: { type: 'boolean' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  output: { type: 'string', short: 'o' },
  token: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

const ENDED = new Set(['Succeeded', 'Failed', 'Stopped']);
const GLYPH: Record<string, string> = {
  Succeeded: '✔',
  Failed: '✖',
  Stopped: '■',
  Skipped: '○',
  Running: '●',
  Queued: '◷',
  Pending: '◷',
  WaitingForInputs: '◷',
};
/** Lines of a failed step's stderr printed by submit --watch and get run. */
const STDERR_TAIL = 20;

/** Makes the server client for these options; `factory` is replaced in tests. */
export type ClientFactory = (server: string, token: string | undefined) => MesonClient;
let factory: ClientFactory = (server, token) => new HttpClient(server, token);
export function setClientFactory(f: ClientFactory): void {
  factory = f;
}

interface Ctx {
  client: MesonClient;
  ns: string;
  output: 'json' | 'yaml' | 'wide' | undefined;
  io: CliIo;
}

type Values = Record<string, string | boolean | string[] | undefined>;

async function context(values: Values, io: CliIo): Promise<Ctx> {
  if (typeof values.token === 'string') {
    // a token on the command line lands in shell history and in `ps`: still honoured, with a warning
    io.stderr(
      'mesonctl: warning: --token is visible in shell history and process lists; set MESON_API_TOKEN instead\n',
    );
  }
  const token =
    (typeof values.token === 'string' ? values.token : undefined) ?? (io.env.MESON_API_TOKEN || undefined);
  const server = (values.server as string | undefined) ?? (io.env.MESON_SERVER || DEFAULT_SERVER);
  const output = values.output as string | undefined;
  if (output !== undefined && !['json', 'yaml', 'wide'].includes(output)) {
    throw new UsageError(`-o ${output}: expected json, yaml or wide`);
  }
  const kube = values.kube === true || values.kubeconfig !== undefined || io.env.MESON_CLIENT === 'kube';
  if (kube && values.server !== undefined)
    throw new UsageError('--server and --kube/--kubeconfig: choose one');
  return {
    client: kube
      ? // loaded only here: the Kubernetes client library is large, and server verbs never need it
        (await import('../kube-client.ts')).KubeClient.fromKubeconfig(
          (values.kubeconfig as string | undefined) ?? (io.env.KUBECONFIG?.split(':')[0] || undefined),
          values.context as string | undefined,
        )
      : factory(server, token),
    ns: (values.namespace as string | undefined) ?? (io.env.MESON_NAMESPACE || 'default'),
    output: output as Ctx['output'],
    io,
  };
}

class UsageError extends Error {}

/** Wraps a verb: usage errors exit 2, server errors print their code and exit 1. */
function verb(
  name: string,
  usage: string,
  options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>,
  body: (ctx: Ctx, values: Values, positionals: string[]) => Promise<number>,
): Command {
  const text = `${usage}\n\n${COMMON}\n`;
  return async (args, io) => {
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args,
        options: { ...COMMON_OPTIONS, ...options },
        strict: true,
        allowPositionals: true,
      });
    } catch (err) {
      io.stderr(`mesonctl ${name}: ${(err as Error).message}\n${text}`);
      return 2;
    }
    if (parsed.values.help) {
      io.stdout(text);
      return 0;
    }
    try {
      return await body(
        await context(parsed.values as Values, io),
        parsed.values as Values,
        parsed.positionals,
      );
    } catch (err) {
      if (err instanceof UsageError) {
        io.stderr(`mesonctl ${name}: ${err.message}\n${text}`);
        return 2;
      }
      if (err instanceof ClientError) {
        io.stderr(`mesonctl ${name}: ${err.message} [${err.code}]\n`);
        return err.code === 'CLI_BAD_SERVER' ? 2 : 1;
      }
      io.stderr(`mesonctl ${name}: ${(err as Error).message}\n`);
      return 1;
    }
  };
}

function params(values: Values): Record<string, unknown> | undefined {
  const list = (values.param as string[] | undefined) ?? [];
  if (list.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const raw of list) {
    try {
      const { name, value } = parseParam(raw);
      out[name] = value;
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  return out;
}

function printObject(ctx: Ctx, obj: unknown): void {
  ctx.io.stdout(ctx.output === 'yaml' ? stringify(obj) : `${JSON.stringify(obj, null, 2)}\n`);
}

// --- rendering ------------------------------------------------------------------------------

type Step = {
  id: string;
  step?: string;
  phase: string;
  attempts?: number;
  startTime?: string;
  endTime?: string;
  message?: string;
  exitCode?: number;
};

function duration(start?: string, end?: string, now = Date.now()): string {
  if (!start) return '';
  const ms = (end ? Date.parse(end) : now) - Date.parse(start);
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${s % 60}s`;
}

function age(ts: string | undefined, now = Date.now()): string {
  if (!ts) return '';
  const s = Math.max(0, Math.round((now - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/** The run as `argo get` shows it: a header, then its steps as a tree (instances under their step). */
export function renderRun(run: RunObject, wide = false, now = Date.now()): string {
  const st = run.status ?? {};
  const params = Object.entries(st.parameters ?? {})
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const head = [
    ['Name:', run.metadata.name],
    ['Namespace:', run.metadata.namespace],
    ['Workflow:', `${run.spec.workflow}${st.version ? ` (version ${st.version})` : ''}`],
    ['Initiator:', run.spec.initiator?.type ?? ''],
    ['Phase:', st.phase ?? 'Pending'],
    ...(st.message ? [['Message:', st.message]] : []),
    ['Created:', `${run.metadata.creationTimestamp ?? ''} (${age(run.metadata.creationTimestamp, now)} ago)`],
    ...(st.startTime ? [['Duration:', st.duration ?? duration(st.startTime, st.endTime, now)]] : []),
    ...(params ? [['Parameters:', params]] : []),
  ];
  let out = head.map(([k, v]) => `${k!.padEnd(12)}${v}`).join('\n');
  const steps = (st.steps ?? []) as Step[];
  if (steps.length === 0) return `${out}\n`;
  const rows: string[][] = [
    ['STEP', 'PHASE', 'ATTEMPTS', 'DURATION', ...(wide ? ['STARTED'] : []), 'MESSAGE'],
  ];
  const groups = new Map<string, Step[]>();
  for (const s of steps) {
    const key = s.step ?? s.id;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  const row = (label: string, s: Step) => [
    label,
    s.phase,
    String(s.attempts ?? 0),
    duration(s.startTime, s.endTime, now),
    ...(wide ? [s.startTime ?? ''] : []),
    `${s.message ?? ''}${s.exitCode !== undefined && s.exitCode !== 0 && !s.message?.includes('exit code') ? ` (exit ${s.exitCode})` : ''}`,
  ];
  for (const [name, list] of groups) {
    if (list.length === 1 && list[0]!.id === name) {
      rows.push(row(`${GLYPH[list[0]!.phase] ?? ' '} ${name}`, list[0]!));
      continue;
    }
    const counts = new Map<string, number>();
    for (const s of list) counts.set(s.phase, (counts.get(s.phase) ?? 0) + 1);
    const summary = [...counts].map(([p, n]) => `${n} ${p}`).join(', ');
    rows.push([`  ${name}`, '', '', '', ...(wide ? [''] : []), summary]);
    list.forEach((s, i) => {
      rows.push(row(` ${i === list.length - 1 ? '└─' : '├─'}${GLYPH[s.phase] ?? ' '} ${s.id}`, s));
    });
  }
  out += `\n\n${table(rows)}`;
  if (st.summary?.truncated)
    out += `(only the first ${steps.length} of ${st.summary.total} step instances)\n`;
  return out;
}

/** The last lines of each failed step's stderr, with where the full log is. */
async function failedStderr(ctx: Ctx, run: RunObject): Promise<void> {
  const steps = ((run.status?.steps ?? []) as Step[]).filter(
    (s) => s.phase === 'Failed' && (s.attempts ?? 0) > 0,
  );
  for (const s of steps.slice(0, 5)) {
    let text = '';
    try {
      for await (const chunk of ctx.client.logs(ctx.ns, run.metadata.name, s.id, { stream: 'stderr' }))
        text += chunk;
    } catch {
      continue; // no log (a noop or subworkflow step)
    }
    const lines = text.replace(/\n$/, '').split('\n');
    const tail = lines.slice(-STDERR_TAIL);
    ctx.io.stderr(
      `\n--- ${s.id}: last ${tail.length} line${tail.length === 1 ? '' : 's'} of stderr (full log: mesonctl logs ${run.metadata.name} ${s.id} -n ${ctx.ns}; ${ctx.client.logLocation(ctx.ns, run.metadata.name, s.id)})\n${tail.join('\n')}\n`,
    );
  }
}

function exitCodeOf(run: RunObject): number {
  return run.status?.phase === 'Succeeded' ? 0 : 1;
}

/** Follows a run to its end, printing each step change as a line; returns the final run. */
async function follow(ctx: Ctx, name: string): Promise<RunObject> {
  const seen = new Map<string, string>();
  let last: RunObject | undefined;
  for await (const e of ctx.client.watchRun(ctx.ns, name)) {
    if ('step' in e) {
      const s = e.step as Step;
      if (seen.get(s.id) === s.phase) continue;
      seen.set(s.id, s.phase);
      ctx.io.stdout(`${GLYPH[s.phase] ?? ' '} ${s.id}  ${s.phase}${s.message ? `  ${s.message}` : ''}\n`);
    } else {
      last = e.object;
      if (e.type === 'DELETED') throw new Error(`run ${name} was deleted`);
    }
  }
  // the stream ends with the run; read it whole (with every step) for the final tree
  const final = await ctx.client.getRun(ctx.ns, name);
  if (!ENDED.has(final.status?.phase ?? '') && last && !ENDED.has(last.status?.phase ?? '')) {
    // the server ended the stream early (its time bound): keep following
    return follow(ctx, name);
  }
  return final;
}

async function report(ctx: Ctx, run: RunObject): Promise<number> {
  if (ctx.output === 'json' || ctx.output === 'yaml') printObject(ctx, run);
  else ctx.io.stdout(`\n${renderRun(run, ctx.output === 'wide')}`);
  if (run.status?.phase !== 'Succeeded') await failedStderr(ctx, run);
  return exitCodeOf(run);
}

// --- verbs ----------------------------------------------------------------------------------

export const submitCommand = verb(
  'submit',
  `usage: mesonctl submit FILE|FILE.ts|- [--workflow NAME] [-p k=v]... [--watch] [--no-run]

Creates or updates every Workflow of FILE on the server (a new version when its spec changed),
then starts a run of the first one (or --workflow NAME) with the --param values.
--watch follows the run to its end, printing step changes, then the run as a tree and the
last lines of stderr of failed steps. Exit status: 0 Succeeded, 1 Failed or Stopped (or an
error), 2 bad usage or invalid input.`,
  {
    workflow: { type: 'string' },
    param: { type: 'string', short: 'p', multiple: true },
    watch: { type: 'boolean', short: 'w' },
    'no-run': { type: 'boolean' },
  },
  async (ctx, values, files) => {
    if (files.length === 0) throw new UsageError('expected a FILE (or - for stdin)');
    const parameters = params(values);
    const workflows: Workflow[] = [];
    for (const f of files) {
      let text: string;
      try {
        text = await manifestText(f, ctx.io);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const { docs, issues } = parseManifests(text, f);
      if (issues.length > 0)
        throw new UsageError(issues.map((i) => `${f}: ${i.path}: ${i.message}`).join('\n'));
      for (const d of docs)
        if ((d.doc as { kind?: string }).kind === 'Workflow') workflows.push(d.doc as Workflow);
    }
    if (workflows.length === 0) throw new UsageError(`${files.join(', ')}: no Workflow`);
    for (const wf of workflows) {
      const ns = wf.metadata.namespace ?? ctx.ns;
      const { created, object } = await ctx.client.applyWorkflow(ns, {
        ...wf,
        metadata: { ...wf.metadata, namespace: ns },
      });
      ctx.io.stderr(`workflow ${ns}/${object.metadata.name} ${created ? 'created' : 'applied'}\n`);
    }
    if (values['no-run']) return 0;
    const wanted = values.workflow as string | undefined;
    const target = wanted ? workflows.find((w) => w.metadata.name === wanted) : workflows[0];
    if (!target) throw new UsageError(`no Workflow named "${wanted}" in ${files.join(', ')}`);
    const ns = target.metadata.namespace ?? ctx.ns;
    const run = await ctx.client.startRun(ns, target.metadata.name!, {
      ...(parameters ? { parameters } : {}),
    });
    const sub = { ...ctx, ns };
    if (!values.watch) {
      if (ctx.output === 'json' || ctx.output === 'yaml') printObject(ctx, run);
      else ctx.io.stdout(`run ${ns}/${run.metadata.name} started\n`);
      return 0;
    }
    ctx.io.stderr(`run ${ns}/${run.metadata.name} started; following it (Ctrl-C leaves it running)\n`);
    return report(sub, await follow(sub, run.metadata.name));
  },
);

export const getCommand = verb(
  'get',
  `usage: mesonctl get runs [--workflow NAME] [--phase PHASE] [--initiator TYPE] [-l SELECTOR]
                      [--since TIME] [--before TIME] [--limit N] [--all]
       mesonctl get run NAME

runs: the runs of the namespace, newest first (a page of --limit, default 50; --all for every page).
run NAME: the run and its steps as a tree (instances of a foreach under their step).`,
  {
    workflow: { type: 'string' },
    phase: { type: 'string' },
    initiator: { type: 'string' },
    selector: { type: 'string', short: 'l' },
    since: { type: 'string' },
    before: { type: 'string' },
    limit: { type: 'string' },
    all: { type: 'boolean' },
  },
  async (ctx, values, pos) => {
    const [what, name] = pos;
    if (what === 'run' || (what === 'runs' && name !== undefined)) {
      if (!name) throw new UsageError('get run: expected a run NAME');
      const run = await ctx.client.getRun(ctx.ns, name);
      if (ctx.output === 'json' || ctx.output === 'yaml') printObject(ctx, run);
      else ctx.io.stdout(renderRun(run, ctx.output === 'wide'));
      return 0;
    }
    if (what !== 'runs') throw new UsageError(`get: expected "runs" or "run NAME", got ${what ?? 'nothing'}`);
    const limit = values.limit === undefined ? 50 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new UsageError('--limit: expected 1 to 1000');
    const items: RunObject[] = [];
    let cont: string | undefined;
    do {
      const page = await ctx.client.listRuns(ctx.ns, {
        limit,
        ...(values.workflow ? { workflow: values.workflow as string } : {}),
        ...(values.phase ? { phase: values.phase as string } : {}),
        ...(values.initiator ? { initiator: values.initiator as string } : {}),
        ...(values.selector ? { labelSelector: values.selector as string } : {}),
        ...(values.since ? { createdAfter: values.since as string } : {}),
        ...(values.before ? { createdBefore: values.before as string } : {}),
        ...(cont ? { continue: cont } : {}),
      });
      items.push(...page.items);
      cont = values.all ? page.continue : undefined;
    } while (cont);
    if (ctx.output === 'json' || ctx.output === 'yaml') {
      printObject(ctx, { items });
      return 0;
    }
    if (items.length === 0) {
      ctx.io.stderr(`no runs in namespace ${ctx.ns}\n`);
      return 0;
    }
    const wide = ctx.output === 'wide';
    const rows = [
      [
        'NAME',
        'WORKFLOW',
        'PHASE',
        'AGE',
        'DURATION',
        'INITIATOR',
        ...(wide ? ['VERSION', 'STEPS', 'MESSAGE'] : []),
      ],
    ];
    for (const r of items) {
      const st = r.status ?? {};
      rows.push([
        r.metadata.name,
        r.spec.workflow,
        st.phase ?? 'Pending',
        age(r.metadata.creationTimestamp),
        st.duration ?? duration(st.startTime, st.endTime),
        r.spec.initiator?.type ?? '',
        ...(wide ? [String(st.version ?? ''), String(st.summary?.total ?? ''), st.message ?? ''] : []),
      ]);
    }
    ctx.io.stdout(table(rows));
    return 0;
  },
);

export const logsCommand = verb(
  'logs',
  `usage: mesonctl logs RUN [STEP] [-f] [--stream stdout|stderr|all] [--attempt N]

The log of STEP of RUN (stdout and stderr by default), or of every step that ran, each line
prefixed by its step. -f follows: new output as it is written, until the step (or the run) ends.`,
  {
    follow: { type: 'boolean', short: 'f' },
    stream: { type: 'string' },
    attempt: { type: 'string' },
  },
  async (ctx, values, pos) => {
    const [run, step] = pos;
    if (!run) throw new UsageError('expected a RUN');
    const stream = (values.stream as string | undefined) ?? 'all';
    if (!['stdout', 'stderr', 'all'].includes(stream))
      throw new UsageError('--stream: expected stdout, stderr or all');
    const attempt = values.attempt === undefined ? undefined : Number(values.attempt);
    if (attempt !== undefined && !(Number.isInteger(attempt) && attempt > 0)) {
      throw new UsageError('--attempt: expected a positive integer');
    }
    const opts = {
      stream: stream as 'stdout' | 'stderr' | 'all',
      follow: values.follow === true,
      ...(attempt !== undefined ? { attempt } : {}),
    };
    if (step) {
      for await (const chunk of ctx.client.logs(ctx.ns, run, step, opts)) ctx.io.stdout(chunk);
      return 0;
    }
    // every step: prefixed lines; with -f, each step's log from when it starts until the run ends
    const prefixed = async (id: string) => {
      let partial = '';
      try {
        for await (const chunk of ctx.client.logs(ctx.ns, run, id, opts)) {
          const lines = (partial + chunk).split('\n');
          partial = lines.pop()!;
          for (const l of lines) ctx.io.stdout(`${id} | ${l}\n`);
        }
      } catch (err) {
        if (!(err instanceof ClientError && err.status === 404)) throw err;
      }
      if (partial) ctx.io.stdout(`${id} | ${partial}\n`);
    };
    if (!opts.follow) {
      const r = await ctx.client.getRun(ctx.ns, run);
      for (const s of (r.status?.steps ?? []) as Step[]) if ((s.attempts ?? 0) > 0) await prefixed(s.id);
      return 0;
    }
    const following = new Map<string, Promise<void>>();
    for await (const e of ctx.client.watchRun(ctx.ns, run)) {
      if (!('step' in e)) continue;
      const s = e.step as Step;
      if ((s.attempts ?? 0) > 0 && !following.has(s.id)) following.set(s.id, prefixed(s.id));
    }
    await Promise.all(following.values());
    return 0;
  },
);

export const stopCommand = verb(
  'stop',
  'usage: mesonctl stop RUN...\n\nAsks the server to stop each RUN (its running steps are killed).',
  {},
  async (ctx, _v, runs) => {
    if (runs.length === 0) throw new UsageError('expected a RUN');
    for (const r of runs) {
      await ctx.client.stopRun(ctx.ns, r);
      ctx.io.stdout(`run ${ctx.ns}/${r}: stop requested\n`);
    }
    return 0;
  },
);

export const restartCommand = verb(
  'restart',
  `usage: mesonctl restart RUN [--from failed|beginning | --step STEP] [--version N|active] [-p k=v]... [--watch]

Starts a new run from RUN: --from failed (the default) re-runs only what did not succeed;
--from beginning re-runs everything; --step STEP re-runs STEP and everything downstream of it
(later steps of its sequences, its loop, steps that read its outputs), reusing the rest, and
works on a Succeeded run too. --version runs another version of the workflow (a number, or
"active" for the one a new run would take: resume on a fix); the default is RUN's version.
--param values replace RUN's.`,
  {
    from: { type: 'string' },
    step: { type: 'string' },
    version: { type: 'string' },
    param: { type: 'string', short: 'p', multiple: true },
    watch: { type: 'boolean', short: 'w' },
  },
  async (ctx, values, pos) => {
    const [run] = pos;
    if (!run) throw new UsageError('expected a RUN');
    const step = values.step as string | undefined;
    const from = (values.from as string | undefined) ?? (step !== undefined ? 'step' : 'failed');
    if (from !== 'failed' && from !== 'beginning' && from !== 'step')
      throw new UsageError('--from: expected failed or beginning (or --step STEP)');
    if ((from === 'step') !== (step !== undefined)) throw new UsageError('--step STEP goes without --from');
    const version = restartVersionFlag(values.version as string | undefined);
    const parameters = params(values);
    const created = await ctx.client.restartRun(ctx.ns, run, {
      from,
      ...(step !== undefined ? { step } : {}),
      ...(version !== undefined ? { version } : {}),
      ...(parameters ? { parameters } : {}),
    });
    const what = `run ${ctx.ns}/${created.metadata.name} started (restart of ${run} from ${step !== undefined ? `step ${step}` : from})\n`;
    if (!values.watch) {
      if (ctx.output === 'json' || ctx.output === 'yaml') printObject(ctx, created);
      else ctx.io.stdout(what);
      return 0;
    }
    ctx.io.stderr(what);
    return report(ctx, await follow(ctx, created.metadata.name));
  },
);

function restartVersionFlag(v: string | undefined): number | 'active' | undefined {
  if (v === undefined || v === 'active') return v;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`--version ${v.slice(0, 40)}: expected a version number or "active"`);
  return n;
}

function suspendVerb(name: 'suspend' | 'resume', suspend: boolean): Command {
  return verb(
    name,
    suspend
      ? `usage: mesonctl suspend WORKFLOW...

Pauses each WORKFLOW's cron and artifact triggers (spec.suspend: true). Runs already started go
on; people and the API can still start runs. No new version is made.`
      : `usage: mesonctl resume WORKFLOW...

Resumes each WORKFLOW's triggers (spec.suspend: false). Cron slots that came due while it was
suspended are skipped, not caught up; the next slot fires as usual.`,
    {},
    async (ctx, _v, workflows) => {
      if (workflows.length === 0) throw new UsageError('expected a WORKFLOW');
      for (const wf of workflows) {
        await ctx.client.patchWorkflowSpec(ctx.ns, wf, { suspend });
        ctx.io.stdout(`workflow ${ctx.ns}/${wf}: ${suspend ? 'suspended' : 'resumed'}\n`);
      }
      return 0;
    },
  );
}

export const suspendCommand = suspendVerb('suspend', true);
export const resumeCommand = suspendVerb('resume', false);

export const backfillCommand = verb(
  'backfill',
  `usage: mesonctl backfill WORKFLOW --param NAME --from DATE --to DATE [--parallelism N] [--priority N]
                         [-p k=v]...

One run of WORKFLOW per date from --from to --to (dateint 20240131 or 2024-01-31), the date
given as parameter --param NAME; the other -p values go to every run.`,
  {
    param: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    parallelism: { type: 'string' },
    priority: { type: 'string' },
    set: { type: 'string', short: 'p', multiple: true },
  },
  async (ctx, values, pos) => {
    const [workflow] = pos;
    if (!workflow) throw new UsageError('expected a WORKFLOW');
    if (!values.param || !values.from || !values.to)
      throw new UsageError('--param, --from and --to are required');
    const date = (d: string) => (/^\d{8}$/.test(d) ? Number(d) : d);
    const int = (v: unknown, name: string) => {
      const n = Number(v);
      if (!Number.isInteger(n)) throw new UsageError(`${name}: expected an integer`);
      return n;
    };
    const others = params({ param: values.set });
    const res = await ctx.client.backfill(ctx.ns, workflow, {
      parameter: values.param,
      from: date(values.from as string),
      to: date(values.to as string),
      ...(values.parallelism !== undefined ? { parallelism: int(values.parallelism, '--parallelism') } : {}),
      ...(values.priority !== undefined ? { priority: int(values.priority, '--priority') } : {}),
      ...(others ? { parameters: others } : {}),
    });
    if (ctx.output === 'json' || ctx.output === 'yaml') printObject(ctx, res);
    else
      ctx.io.stdout(
        `backfill ${res.backfill}: ${res.runs.length} runs\n${res.runs.map((r) => `  ${r}\n`).join('')}`,
      );
    return 0;
  },
);
