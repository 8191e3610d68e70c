// Runs: start (with parameters), list (filtered by workflow and phase, paged), get with steps,
// stop, restart from failed, step instances and their logs.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { checkRunStart, type RunStartRequest, restartVersion } from '../../controller/run-check.ts';
import { stepLogSource } from '../../controller/step-logs.ts';
import {
  API_VERSION,
  JsonValueSchema,
  RUN_PHASES,
  type StepInstanceStatus,
  type Workflow,
  type WorkflowRun,
  WorkflowRunSpecSchema,
  type WorkflowRunStatus,
} from '../../crds/index.ts';
import {
  CLIENT_INITIATOR_TYPES,
  clientInitiatorIssues,
  clientRunIssues,
  userMetadataMapIssues,
} from '../../crds/names.ts';
import { validateDocument } from '../../crds/validate.ts';
import { StepNameSchema } from '../../crds/workflow.ts';
import { labelsHold } from '../../store/paging.ts';
import type { AsyncStore } from '../../store/port.ts';
import { type ResourceObject, type Stored, StoreError } from '../../store/types.ts';
import { type RouteDeps, readsAsStore } from '../app.ts';
import {
  assertNoIssues,
  inspectNames,
  pageLimit,
  parseLabelSelector,
  parseWith,
  type Query,
  queryBool,
  queryTime,
} from '../http.ts';
import { ApiError } from '../problems.ts';
import { resourceVersionOf, watchRun, watchRuns } from './watch.ts';

type NsParams = { ns: string };
type RunParams = { ns: string; run: string };

/** Parameters as an object {name: value} or a list [{name, value}]. */
export const RunParametersSchema = z.union([
  z.record(z.string(), JsonValueSchema),
  z.array(z.strictObject({ name: z.string().min(1), value: JsonValueSchema })),
]);

/** What a client may say about who starts a run; the other initiators are the system's. */
export const ClientInitiatorSchema = z.strictObject({
  type: z.enum(CLIENT_INITIATOR_TYPES),
  user: z.string().max(253).optional(),
});

export const StartRunRequestSchema = z.strictObject({
  parameters: RunParametersSchema.optional(),
  version: z.number().int().positive().optional(),
  initiator: ClientInitiatorSchema.optional().describe('api (the default) or manual'),
  labels: z
    .record(z.string(), z.string())
    .optional()
    .describe('Labels of the run; meson.dev/ keys are the system’s and refused'),
});

/** The metadata a client may give a run (kubectl-style POST); the rest is the server's. */
const ClientRunMetadataSchema = z.looseObject({
  name: z.string().optional(),
  generateName: z.string().optional(),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export const RestartRunRequestSchema = z.strictObject({
  from: z.enum(['failed', 'beginning', 'step']).default('failed'),
  /** With from: step, the step to restart from (it and everything downstream run again). */
  step: StepNameSchema.optional(),
  parameters: RunParametersSchema.optional(),
  /** The version to run (a fix): a number, or "active" for the one a new run would take. Default: the restarted run's. */
  version: z.union([z.number().int().positive(), z.literal('active')]).optional(),
});

function toParameterList(p: z.infer<typeof RunParametersSchema> | undefined) {
  if (p === undefined) return undefined;
  return Array.isArray(p) ? p : Object.entries(p).map(([name, value]) => ({ name, value }));
}

export function runObject(
  ns: string,
  workflow: string,
  spec: Omit<WorkflowRun['spec'], 'workflow'>,
  labels: Record<string, string> = {},
  annotations?: Record<string, string>,
): WorkflowRun {
  return {
    apiVersion: API_VERSION,
    kind: 'WorkflowRun',
    metadata: {
      generateName: `${workflow}-`,
      namespace: ns,
      labels: { 'meson.dev/workflow': workflow, ...labels },
      ...(annotations ? { annotations } : {}),
    },
    spec: { workflow, ...spec },
  };
}

/**
 * 422 when the run could not start (no such version, unknown parameter, a value of the wrong
 * type, an expression that fails): the caller learns it now, not from a run that fails later.
 */
export function assertRunCanStart(deps: RouteDeps, wf: Workflow, req: RunStartRequest, prefix = ''): void {
  const issues = checkRunStart(readsAsStore(deps.store), wf, req, deps.now());
  if (issues.length === 0) return;
  const named = issues.map((i) => ({ ...i, path: `${prefix}${i.path}` }));
  throw new ApiError(
    'API_INVALID',
    `the run cannot start: ${named.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    { issues: named },
  );
}

function getRun(deps: RouteDeps, ns: string, name: string): Stored<WorkflowRun> {
  const run = deps.store.get<WorkflowRun>('WorkflowRun', ns, name);
  if (!run) throw new ApiError('API_NOT_FOUND', `run "${ns}/${name}" not found`);
  return run;
}

/** Creates one object and answers with it as stored. */
async function createOne<T extends ResourceObject>(
  store: AsyncStore,
  kind: 'WorkflowRun' | 'DataArtifact',
  obj: T,
): Promise<Stored<T>> {
  return (await store.transaction((w) => w.create<T>(kind, obj))).value;
}

/** Attempts at writing a run's spec while the controller writes its status. */
const SPEC_ATTEMPTS = 5;

/**
 * Sets spec.stop (the controller stops the run). The write carries the run's resourceVersion;
 * when the controller wrote the run meanwhile (its status), the run is re-read and the stop
 * written again: a stop is never lost to a status write, nor applied to a run that ended.
 */
async function requestStop(store: AsyncStore, run: Stored<WorkflowRun>): Promise<Stored<WorkflowRun>> {
  let current = run;
  for (let attempt = 1; ; attempt++) {
    const base = current;
    try {
      const r = await store.transaction((w) =>
        w.update<WorkflowRun>('WorkflowRun', { ...base, spec: { ...base.spec, stop: true } }),
      );
      return r.value;
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== 'STORE_CONFLICT' || attempt >= SPEC_ATTEMPTS)
        throw err;
      const live = await store.getLive<WorkflowRun>(
        'WorkflowRun',
        base.metadata.namespace,
        base.metadata.name,
      );
      if (!live)
        throw new ApiError(
          'API_NOT_FOUND',
          `run "${base.metadata.namespace}/${base.metadata.name}" not found`,
        );
      const phase = live.status?.phase;
      if (live.spec.stop || phase === 'Succeeded' || phase === 'Failed' || phase === 'Stopped') return live;
      current = live;
    }
  }
}

export function runRoutes(deps: RouteDeps): FastifyPluginAsync {
  const { store } = deps;
  const reads = readsAsStore(store);
  return async (app) => {
    app.post<{ Params: NsParams & { name: string }; Body: unknown }>(
      '/namespaces/:ns/workflows/:name/runs',
      async (req, reply) => {
        const ns = req.params.ns;
        const raw = (req.body ?? {}) as Record<string, unknown>;
        // system-owned fields first: a forged initiator is refused as such, not as a bad enum
        if (typeof raw === 'object' && raw !== null && !Array.isArray(raw)) {
          assertNoIssues(
            [
              ...clientInitiatorIssues(raw.initiator, ['initiator']),
              ...userMetadataMapIssues(raw.labels, ['labels'], 'labels'),
            ],
            'the run cannot be created',
          );
        }
        const body = parseWith(StartRunRequestSchema, raw, 'body');
        const wf = store.get<Workflow>('Workflow', ns, req.params.name);
        if (!wf) throw new ApiError('API_NOT_FOUND', `workflow "${ns}/${req.params.name}" not found`);
        const parameters = toParameterList(body.parameters);
        inspectNames(parameters, 'parameters');
        assertRunCanStart(deps, wf, {
          ...(body.version ? { version: body.version } : {}),
          ...(parameters ? { parameters } : {}),
        });
        const run = await createOne<WorkflowRun>(
          store,
          'WorkflowRun',
          runObject(
            ns,
            req.params.name,
            {
              ...(parameters ? { parameters } : {}),
              ...(body.version ? { version: body.version } : {}),
              initiator: body.initiator ?? { type: 'api' },
            },
            body.labels,
          ),
        );
        return reply.code(201).send(run);
      },
    );

    // a full WorkflowRun spec, as kubectl would create it
    app.post<{ Params: NsParams; Body: unknown }>('/namespaces/:ns/runs', async (req, reply) => {
      const ns = req.params.ns;
      const body = parseWith(
        z.object({ metadata: ClientRunMetadataSchema.optional(), spec: WorkflowRunSpecSchema }).loose(),
        req.body,
        'body',
      );
      const meta = body.metadata ?? {};
      if (meta.namespace !== undefined && meta.namespace !== ns) {
        throw new ApiError(
          'API_BAD_REQUEST',
          `metadata.namespace "${meta.namespace}" differs from the path's "${ns}"`,
        );
      }
      inspectNames(body.spec.parameters, 'spec.parameters');
      // only the fields a client writes: uid, ownerReferences, finalizers... are the server's
      const run: WorkflowRun = {
        apiVersion: API_VERSION,
        kind: 'WorkflowRun',
        metadata: {
          namespace: ns,
          ...(meta.name
            ? { name: meta.name }
            : { generateName: meta.generateName ?? `${body.spec.workflow}-` }),
          ...(meta.labels ? { labels: meta.labels } : {}),
          ...(meta.annotations ? { annotations: meta.annotations } : {}),
        },
        spec: { initiator: { type: 'api' }, ...body.spec },
      };
      // names (they become directories of the data dir) and system-owned fields, as the
      // validator checks them everywhere (422 naming the field)
      assertNoIssues(
        [...clientRunIssues(run.metadata, run.spec), ...validateDocument(run)],
        'the WorkflowRun is invalid',
      );
      run.metadata.labels = { ...(run.metadata.labels ?? {}), 'meson.dev/workflow': body.spec.workflow };
      const wf = store.get<Workflow>('Workflow', ns, body.spec.workflow);
      if (!wf) {
        throw new ApiError(
          'API_NOT_FOUND',
          `spec.workflow: workflow "${ns}/${body.spec.workflow}" not found`,
        );
      }
      // a restart's parameters are checked against the restarted run's when it starts
      if (!body.spec.restartOf) {
        assertRunCanStart(
          deps,
          wf,
          {
            ...(body.spec.version ? { version: body.spec.version } : {}),
            ...(body.spec.parameters ? { parameters: body.spec.parameters } : {}),
          },
          'spec.',
        );
      }
      return reply.code(201).send(await createOne(store, 'WorkflowRun', run));
    });

    // newest first, filtered and paged in the store; watch=true turns it into an event stream
    app.get<{ Params: NsParams; Querystring: Query }>('/namespaces/:ns/runs', async (req, reply) => {
      const ns = req.params.ns;
      const q = req.query;
      const labels = parseLabelSelector(q.labelSelector);
      if (queryBool(q.watch, 'watch')) {
        for (const k of [
          'phase',
          'initiator',
          'version',
          'createdAfter',
          'createdBefore',
          'limit',
          'continue',
        ]) {
          if (q[k] !== undefined) {
            throw new ApiError(
              'API_BAD_REQUEST',
              `${k}: not available with watch=true (filter the events on the client)`,
            );
          }
        }
        const workflow = q.workflow;
        const match = (r: Stored<WorkflowRun>) =>
          (workflow === undefined || r.spec.workflow === workflow) && labelsHold(r.metadata.labels, labels);
        watchRuns(deps, req, reply, ns, match, resourceVersionOf(q.resourceVersion));
        return reply;
      }
      if (q.resourceVersion !== undefined) {
        throw new ApiError('API_BAD_REQUEST', 'resourceVersion: only with watch=true');
      }
      const phase = q.phase;
      if (phase !== undefined && !(RUN_PHASES as readonly string[]).includes(phase)) {
        throw new ApiError(
          'API_BAD_REQUEST',
          `phase: expected one of ${RUN_PHASES.join(', ')}, got "${phase.slice(0, 100)}"`,
        );
      }
      const version = q.version === undefined ? undefined : Number(q.version);
      if (
        version !== undefined &&
        !(Number.isSafeInteger(version) && version >= 1 && /^\d+$/.test(q.version!))
      ) {
        throw new ApiError(
          'API_BAD_REQUEST',
          `version: expected a positive integer, got "${q.version!.slice(0, 100)}"`,
        );
      }
      const createdAfter = queryTime(q.createdAfter, 'createdAfter');
      const createdBefore = queryTime(q.createdBefore, 'createdBefore');
      const resourceVersion = deps.history.currentResourceVersion();
      const page = deps.history.pageRuns<WorkflowRun>(ns, {
        limit: pageLimit(q.limit) ?? 100,
        ...(q.continue ? { continue: q.continue } : {}),
        ...(q.workflow !== undefined ? { workflow: q.workflow } : {}),
        ...(phase !== undefined ? { phase } : {}),
        ...(q.initiator !== undefined ? { initiator: q.initiator } : {}),
        ...(version !== undefined ? { version } : {}),
        ...(labels ? { labels } : {}),
        ...(createdAfter ? { createdAfter } : {}),
        ...(createdBefore ? { createdBefore } : {}),
      });
      return {
        items: page.items,
        ...(page.continue ? { continue: page.continue } : {}),
        metadata: { resourceVersion },
      };
    });

    // the changes of one run and of its step instances, as server-sent events, until it ends
    app.get<{ Params: RunParams; Querystring: Query }>(
      '/namespaces/:ns/runs/:run/events',
      async (req, reply) => {
        const { ns, run } = req.params;
        getRun(deps, ns, run);
        watchRun(deps, req, reply, ns, run, resourceVersionOf(req.query.resourceVersion));
        return reply;
      },
    );

    app.get<{ Params: RunParams; Querystring: Query }>('/namespaces/:ns/runs/:run', async (req, reply) => {
      const run = getRun(deps, req.params.ns, req.params.run);
      if (req.query.steps === 'false') return run;
      const limit = pageLimit(req.query.stepsLimit, 10_000, 'stepsLimit') ?? 1000;
      const page = store.getStepInstances(req.params.ns, req.params.run, { limit });
      const status: WorkflowRunStatus = {
        ...(run.status ?? {}),
        steps: page.items.map((s) => s.data as StepInstanceStatus),
      };
      if (page.continue) {
        // only the first instances: the summary says so, the rest are paged from /steps
        if (status.summary) status.summary = { ...status.summary, truncated: true };
        reply.header('x-meson-steps-continue', page.continue);
      }
      return { ...run, status };
    });

    app.get<{ Params: RunParams; Querystring: Query }>('/namespaces/:ns/runs/:run/steps', async (req) => {
      getRun(deps, req.params.ns, req.params.run);
      const limit = pageLimit(req.query.limit, 10_000) ?? 1000;
      const page = store.getStepInstances(req.params.ns, req.params.run, {
        limit,
        ...(req.query.phase ? { phase: req.query.phase } : {}),
        ...(req.query.continue ? { continue: req.query.continue } : {}),
      });
      return { items: page.items.map((s) => s.data), ...(page.continue ? { continue: page.continue } : {}) };
    });

    app.get<{ Params: RunParams & { step: string }; Querystring: Query }>(
      '/namespaces/:ns/runs/:run/steps/:step/logs',
      async (req, reply) => {
        const { ns, run, step } = req.params;
        const stream = req.query.stream ?? 'stdout';
        if (stream !== 'stdout' && stream !== 'stderr' && stream !== 'all') {
          throw new ApiError(
            'API_BAD_REQUEST',
            `stream: expected stdout, stderr or all, got "${stream.slice(0, 100)}"`,
          );
        }
        const streams: ('stdout' | 'stderr')[] = stream === 'all' ? ['stdout', 'stderr'] : [stream];
        const follow = queryBool(req.query.follow, 'follow');
        getRun(deps, ns, run);
        const inst = store.getStepInstance(ns, run, step);
        if (!inst) throw new ApiError('API_NOT_FOUND', `run "${ns}/${run}" has no step instance "${step}"`);
        // a skipped step says so; a step reused by a restart shows the logs of the run that ran it
        const source = stepLogSource(reads, ns, run, step);
        if (source && 'none' in source)
          return reply.type('text/plain; charset=utf-8').send(`${source.none}\n`);
        if (source?.reusedFrom) reply.header('x-meson-logs-from-run', source.reusedFrom);
        const logRun = source?.run ?? run;
        const attempts = source?.attempts ?? Number((inst.data as { attempts?: number }).attempts ?? 1);
        if (req.query.attempt === undefined && attempts < 1 && !follow) {
          const phase = (inst.data as { phase?: string }).phase;
          throw new ApiError('API_NOT_FOUND', `step "${step}" has not run (it is ${phase}): no logs yet`);
        }
        const fixed = req.query.attempt === undefined ? undefined : Number(req.query.attempt);
        if (fixed !== undefined && (!Number.isInteger(fixed) || fixed < 1)) {
          throw new ApiError(
            'API_BAD_REQUEST',
            `attempt: expected a positive integer, got "${req.query.attempt!.slice(0, 100)}"`,
          );
        }
        // a container's log is one stream: stdout and stderr together, whatever was asked
        if (deps.logs.combined) reply.header('x-meson-log-streams', 'combined');
        const at = { ns, run: logRun, step, streams };
        if (follow) {
          const out = deps.streams.start(req, reply, 'text');
          deps.logs.follow({ ...at, ...(fixed !== undefined ? { attempt: fixed } : {}) }, out);
          return reply;
        }
        const attempt = fixed ?? attempts;
        const text = await deps.logs.read({ ...at, attempt });
        if (text === undefined) {
          throw new ApiError(
            'API_NOT_FOUND',
            `no logs for attempt ${attempt} of "${step}" (noop and subworkflow steps have none${deps.logs.combined ? '; a deleted Pod, by pod GC (--pod-gc) or by hand, took its log along' : ''})`,
          );
        }
        return reply.type('text/plain; charset=utf-8').send(text);
      },
    );

    // every launch of every attempt of a step instance, with the executor's milestones
    app.get<{ Params: RunParams & { step: string } }>(
      '/namespaces/:ns/runs/:run/steps/:step/attempts',
      async (req) => {
        const { ns, run, step } = req.params;
        getRun(deps, ns, run);
        if (!store.getStepInstance(ns, run, step)) {
          throw new ApiError('API_NOT_FOUND', `run "${ns}/${run}" has no step instance "${step}"`);
        }
        const items = await deps.logs.attempts(ns, run, step);
        return { items };
      },
    );

    app.post<{ Params: RunParams }>('/namespaces/:ns/runs/:run/stop', async (req, reply) => {
      const run = getRun(deps, req.params.ns, req.params.run);
      const phase = run.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed' || phase === 'Stopped') {
        throw new ApiError(
          'API_CONFLICT',
          `run "${run.metadata.name}" already ended (${phase}): nothing to stop`,
        );
      }
      const updated = run.spec.stop ? run : await requestStop(store, run);
      return reply.code(202).send(updated);
    });

    app.post<{ Params: RunParams; Body: unknown }>(
      '/namespaces/:ns/runs/:run/restart',
      async (req, reply) => {
        const prev = getRun(deps, req.params.ns, req.params.run);
        const body = parseWith(RestartRunRequestSchema, req.body ?? {}, 'body');
        if ((body.from === 'step') !== (body.step !== undefined)) {
          throw new ApiError(
            'API_BAD_REQUEST',
            'body.step: expected a step name exactly when body.from is "step"',
          );
        }
        const phase = prev.status?.phase;
        if (body.from === 'step' && phase !== 'Succeeded' && phase !== 'Failed' && phase !== 'Stopped') {
          throw new ApiError(
            'API_CONFLICT',
            `run "${prev.metadata.name}" is ${phase ?? 'not started'}: only a finished run can be restarted from a step`,
          );
        }
        if (phase !== 'Failed' && phase !== 'Stopped' && body.from === 'failed') {
          throw new ApiError(
            'API_CONFLICT',
            `run "${prev.metadata.name}" is ${phase ?? 'not started'}: only a Failed or Stopped run can be restarted from failed`,
          );
        }
        inspectNames(toParameterList(body.parameters), 'parameters');
        const parameters = toParameterList(body.parameters) ?? prev.spec.parameters;
        const wf = store.get<Workflow>('Workflow', req.params.ns, prev.spec.workflow);
        const version = restartVersion(reads, wf, body.version, prev.status?.version);
        if (wf && (body.parameters || body.version !== undefined || body.step !== undefined)) {
          assertRunCanStart(deps, wf, {
            ...(version ? { version } : {}),
            parameters: toParameterList(body.parameters) ?? [],
            ...(body.from !== 'beginning' ? { base: prev.status?.parameters ?? {} } : {}),
            ...(body.step !== undefined ? { fromStep: body.step } : {}),
          });
        }
        const run = await createOne<WorkflowRun>(
          store,
          'WorkflowRun',
          runObject(req.params.ns, prev.spec.workflow, {
            ...(version ? { version } : {}),
            ...(parameters ? { parameters } : {}),
            initiator: { type: 'restart' },
            restartOf: {
              run: prev.metadata.name,
              from: body.from,
              ...(body.step ? { step: body.step } : {}),
            },
          }),
        );
        return reply.code(201).send(run);
      },
    );

    app.delete<{ Params: RunParams }>('/namespaces/:ns/runs/:run', async (req, reply) => {
      const deleted = await store.transaction((w) => w.delete('WorkflowRun', req.params.ns, req.params.run));
      if (!deleted.value) {
        throw new ApiError('API_NOT_FOUND', `run "${req.params.ns}/${req.params.run}" not found`);
      }
      return reply.code(204).send();
    });
  };
}

export const _schemas = { StartRunRequestSchema, RestartRunRequestSchema };
