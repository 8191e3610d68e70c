// Run watches (server-sent events, Kubernetes-style ADDED/MODIFIED/DELETED with
// resourceVersion), from the store's watch and RunHistory.changedSince in both shells; followed
// logs are the LogSource's (../logs.ts). Every stream goes through the StreamGate (a cap on open
// streams, a time bound, slow clients ended) and unsubscribes from the store on every way out.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { WorkflowRun } from '../../crds/index.ts';
import type { Change, Stored } from '../../store/types.ts';
import type { RouteDeps } from '../app.ts';
import { ApiError } from '../problems.ts';

const RUN_ENDED = new Set(['Succeeded', 'Failed', 'Stopped']);
/** Most step instances a run watch follows (the first ones; larger runs page /steps). */
export const WATCH_MAX_STEPS = 10_000;

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
    const rv = deps.history.currentResourceVersion();
    stream.event({ type: 'BOOKMARK', object: { metadata: { resourceVersion: rv } } }, rv);
    return;
  }
  for (const run of deps.history.changedSince<WorkflowRun>('WorkflowRun', ns, from)) {
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
