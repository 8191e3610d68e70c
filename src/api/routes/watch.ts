// Streaming answers of the runs routes: run watches (server-sent events, Kubernetes-style
// ADDED/MODIFIED/DELETED with resourceVersion) and followed logs. Every stream goes through the
// StreamGate (a cap on open streams, a time bound, slow clients ended) and unsubscribes from the
// store on every way out.
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { readStatus } from '../../../executors/protocol.ts';
import type { WorkflowRun } from '../../crds/index.ts';
import type { Change, LabelRequirement, Stored } from '../../store/types.ts';
import type { RouteDeps } from '../app.ts';
import { ApiError } from '../problems.ts';

const RUN_ENDED = new Set(['Succeeded', 'Failed', 'Stopped']);
const STEP_ENDED = new Set(['Succeeded', 'Failed', 'Skipped', 'Stopped']);
/** Most step instances a run watch follows (the first ones; larger runs page /steps). */
export const WATCH_MAX_STEPS = 10_000;
/** Bytes of a followed log read at a time. */
const READ_CHUNK = 64 * 1024;

/** A resourceVersion query parameter: a non-negative integer (400 otherwise). */
export function resourceVersionOf(raw: string | undefined): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^\d{1,15}$/.test(raw)) {
    throw new ApiError(
      'API_BAD_REQUEST',
      `resourceVersion: expected a non-negative integer, got ${JSON.stringify(raw.slice(0, 100))}`,
    );
  }
  return Number(raw);
}

export function labelsHold(
  have: Record<string, string> | undefined,
  want: LabelRequirement[] | undefined,
): boolean {
  for (const r of want ?? []) {
    const v = have?.[r.key];
    if (r.op === 'eq' && v !== r.value) return false;
    if (r.op === 'neq' && v === r.value) return false;
    if (r.op === 'exists' && v === undefined) return false;
    if (r.op === 'absent' && v !== undefined) return false;
  }
  return true;
}

/**
 * Runs of namespace `ns` that `match`, as events: first (with `from`) the runs written after
 * that resourceVersion (MODIFIED; deletions are not kept), else a BOOKMARK with the current
 * resourceVersion; then every change as it commits.
 */
export function watchRuns(
  deps: RouteDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  ns: string,
  match: (r: Stored<WorkflowRun>) => boolean,
  from: number | undefined,
): void {
  const { store } = deps;
  const stream = deps.streams.start(req, reply, 'sse');
  // subscribe and replay in the same tick: commits are delivered after this handler returns
  const unsubscribe = store.watch((c: Change) => {
    if (c.kind !== 'WorkflowRun' || c.object.metadata.namespace !== ns) return;
    const run = c.object as Stored<WorkflowRun>;
    if (match(run)) stream.event({ type: c.type, object: run }, run.metadata.resourceVersion);
  });
  stream.onClose(unsubscribe);
  if (from === undefined) {
    const rv = store.currentResourceVersion();
    stream.event({ type: 'BOOKMARK', object: { metadata: { resourceVersion: rv } } }, rv);
    return;
  }
  for (const run of store.changedSince<WorkflowRun>('WorkflowRun', ns, from)) {
    if (match(run)) stream.event({ type: 'MODIFIED', object: run }, run.metadata.resourceVersion);
  }
}

/**
 * One run and its step instances as events: the run (ADDED, or only if written after `from`)
 * and its instances, then every change, until the run ends or is deleted. Step instances are
 * sent as `{type, step}` events when their state differs from the last one sent.
 */
export function watchRun(
  deps: RouteDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  ns: string,
  name: string,
  from: number | undefined,
): void {
  const { store } = deps;
  const stream = deps.streams.start(req, reply, 'sse');
  const sent = new Map<string, string>();
  const sendSteps = () => {
    const page = store.getStepInstances(ns, name, { limit: WATCH_MAX_STEPS });
    for (const s of page.items) {
      const json = JSON.stringify(s.data);
      const before = sent.get(s.id);
      if (before === json) continue;
      sent.set(s.id, json);
      stream.event({ type: before === undefined ? 'ADDED' : 'MODIFIED', step: s.data });
    }
  };
  const sendRun = (type: string, run: Stored<WorkflowRun>) => {
    if (type !== 'DELETED') sendSteps();
    stream.event({ type, object: run }, run.metadata.resourceVersion);
    if (type === 'DELETED' || RUN_ENDED.has(run.status?.phase ?? '')) stream.close();
  };
  const unsubscribe = store.watch((c: Change) => {
    if (c.kind !== 'WorkflowRun' || c.object.metadata.namespace !== ns || c.object.metadata.name !== name)
      return;
    sendRun(c.type, c.object as Stored<WorkflowRun>);
  });
  stream.onClose(unsubscribe);
  const run = store.get<WorkflowRun>('WorkflowRun', ns, name);
  if (!run) {
    stream.event({ type: 'DELETED', object: { metadata: { namespace: ns, name } } });
    stream.close();
    return;
  }
  if (from === undefined) sendRun('ADDED', run);
  else if (Number(run.metadata.resourceVersion) > from) sendRun('MODIFIED', run);
  else if (RUN_ENDED.has(run.status?.phase ?? '')) stream.close();
}

/** The newest launch directory of an attempt (a lost executor is relaunched under a new launch id). */
export function latestAttemptDir(sample: string, attempt: number): string | undefined {
  const parent = dirname(sample);
  if (!existsSync(parent)) return undefined;
  const dirs = readdirSync(parent)
    .filter((d) => d.startsWith(`${attempt}-`))
    .map((d) => join(parent, d))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  return dirs[dirs.length - 1];
}

/**
 * A step's log as it is written: what exists now, then new output every pollMs, until the
 * attempt ends (its executor status, the step's phase, a retry, or the run is gone). Reads in
 * bounded chunks and not while the client has not read the previous ones.
 */
export function followLogs(
  deps: RouteDeps,
  req: FastifyRequest,
  reply: FastifyReply,
  at: { ns: string; run: string; step: string; files: string[]; attempt?: number },
): void {
  const { store } = deps;
  const limits = deps.streams.limits;
  const stream = deps.streams.start(req, reply, 'text');
  const offsets = new Map<string, number>();
  let dir: string | undefined;
  let attempt = at.attempt;
  const buf = Buffer.alloc(READ_CHUNK);
  /** Sends new bytes of each file; false when the client is behind (try again later). */
  const pump = (): boolean => {
    if (!dir) return true;
    for (const f of at.files) {
      const path = join(dir, f);
      if (!existsSync(path)) continue;
      const fd = openSync(path, 'r');
      try {
        for (;;) {
          if (reply.raw.writableLength > limits.maxBufferedBytes / 2) return false;
          const off = offsets.get(f) ?? 0;
          const n = readSync(fd, buf, 0, READ_CHUNK, off);
          if (n === 0) break;
          offsets.set(f, off + n);
          if (!stream.write(Buffer.from(buf.subarray(0, n)))) return true;
        }
      } finally {
        closeSync(fd);
      }
    }
    return true;
  };
  const ended = (): boolean => {
    const inst = store.getStepInstance(at.ns, at.run, at.step);
    if (!inst) return true;
    const data = inst.data as { phase?: string; attempts?: number };
    if (attempt === undefined) {
      if ((data.attempts ?? 0) < 1) return STEP_ENDED.has(data.phase ?? '');
      attempt = data.attempts ?? 1;
    }
    if (!dir) dir = latestAttemptDir(store.attemptDir(at.ns, at.run, at.step, attempt, 'x'), attempt);
    if (STEP_ENDED.has(data.phase ?? '') || (data.attempts ?? 0) > attempt) return true;
    const status = dir ? readStatus(dir) : undefined;
    return status !== undefined && status.phase !== 'Running';
  };
  const tick = () => {
    if (stream.closed) return;
    try {
      const over = ended();
      const caughtUp = pump();
      if (over && caughtUp) stream.close();
    } catch {
      stream.close();
    }
  };
  const timer = setInterval(tick, limits.pollMs);
  stream.onClose(() => clearInterval(timer));
  tick();
}
