// Workflows (create/update make versions synchronously, so a run can start right after) and
// their immutable versions.
import type { FastifyPluginAsync } from 'fastify';
import { ensureVersion } from '../../controller/workflows.ts';
import { API_VERSION, type Workflow, type WorkflowVersion } from '../../crds/index.ts';
import { validateDocument } from '../../crds/validate.ts';
import type { WriteBatch } from '../../store/port.ts';
import { type ResourceObject, type Stored, StoreError, type StoreWriter } from '../../store/types.ts';
import { WORKFLOW_LABEL } from '../../versions/index.ts';
import { type RouteDeps, readsAsStore } from '../app.ts';
import { pageLimit, type Query } from '../http.ts';
import { ApiError } from '../problems.ts';

type NsParams = { ns: string };
type NameParams = { ns: string; name: string };

/** The manifest from a request body, with apiVersion/kind/namespace defaulted, validated in full. */
function workflowFromBody(body: unknown, ns: string, name?: string): Workflow {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ApiError('API_BAD_REQUEST', 'body: expected a Workflow object');
  }
  const b = body as Record<string, unknown>;
  // a WorkflowRun or DataArtifact sent here must not be stored as a Workflow
  if (b.kind !== undefined && b.kind !== 'Workflow') {
    throw new ApiError('API_BAD_REQUEST', `kind: expected Workflow, got ${JSON.stringify(b.kind)}`);
  }
  if (b.apiVersion !== undefined && b.apiVersion !== API_VERSION) {
    throw new ApiError(
      'API_BAD_REQUEST',
      `apiVersion: expected ${API_VERSION}, got ${JSON.stringify(b.apiVersion)}`,
    );
  }
  const metadata = { ...((b.metadata as Record<string, unknown> | undefined) ?? {}) };
  if (metadata.namespace !== undefined && metadata.namespace !== ns) {
    throw new ApiError(
      'API_BAD_REQUEST',
      `metadata.namespace "${metadata.namespace}" differs from the path's "${ns}"`,
    );
  }
  if (name !== undefined) {
    if (metadata.name !== undefined && metadata.name !== name) {
      throw new ApiError(
        'API_BAD_REQUEST',
        `metadata.name "${metadata.name}" differs from the path's "${name}"`,
      );
    }
    metadata.name = name;
  }
  metadata.namespace = ns;
  const { status: _ignored, ...rest } = b;
  const doc = { apiVersion: API_VERSION, kind: 'Workflow', ...rest, metadata };
  const issues = validateDocument(doc);
  if (issues.length > 0) {
    throw new ApiError(
      'API_INVALID',
      `the Workflow is invalid: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      {
        issues: issues.map((i) => ({ path: i.path, message: i.message, code: i.code })),
      },
    );
  }
  return doc as Workflow;
}

/** A Workflow the controller could not version (e.g. activeVersion names no version) is refused. */
function assertReady(status: Workflow['status']): void {
  const ready = status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status === 'False') {
    throw new ApiError('API_INVALID', `the Workflow is invalid: ${ready.message ?? ready.reason}`);
  }
}

/**
 * ensureVersion (the controller's) writes through the first port's StoreWriter, whose `create`
 * returns the stored object; here the writes are recorded in `w` and committed afterwards.
 * ensureVersion only reads the created version's spec (its number), which the recorded object
 * has. `created` collects the names of the versions it creates.
 */
function recordingWriter(w: WriteBatch | undefined, created: string[] = []): StoreWriter {
  const other = (): never => {
    throw new Error('ensureVersion wrote something else than a version and a status');
  };
  const stored = <T extends ResourceObject>(obj: T) => obj as Stored<T>;
  return {
    create: (kind, obj) => {
      w?.create(kind, obj);
      created.push(obj.metadata.name ?? '');
      return stored(obj);
    },
    updateStatus: (kind, obj) => {
      w?.updateStatus(kind, obj);
      return stored(obj);
    },
    update: other,
    delete: other,
    putStepInstances: other,
    deleteStepInstances: other,
    putTasks: other,
    deleteTask: other,
    setState: other,
    deleteState: other,
  };
}

/** Attempts at writing a Workflow's version and status when the controller does it too. */
const VERSION_ATTEMPTS = 5;

export function workflowRoutes(deps: RouteDeps): FastifyPluginAsync {
  const { store } = deps;
  const reads = readsAsStore(store);

  /**
   * Refuses (422) a Workflow the controller could not version, before anything is written:
   * its version and status computed as if `wf` were stored (a dry run).
   */
  const assertVersionable = (wf: Workflow, cur: Stored<Workflow> | undefined) => {
    const meta = cur?.metadata ?? { uid: '', resourceVersion: '', generation: 1 };
    const candidate = {
      ...wf,
      status: cur?.status,
      metadata: { ...meta, ...wf.metadata },
    } as Stored<Workflow>;
    assertReady(ensureVersion(reads, recordingWriter(undefined), candidate, deps.now()));
  };

  /**
   * Makes the version of a stored Workflow and writes its status, so that a run can start as
   * soon as the answer is sent. The controller does the same on the change it watched: the
   * loser of that race re-reads and finds the version made (or the status written).
   */
  const version = async (saved: Stored<Workflow>) => {
    const { namespace: ns, name } = saved.metadata;
    let current: Stored<Workflow> | undefined = saved;
    for (let attempt = 1; current; attempt++) {
      const wf: Stored<Workflow> = current;
      const created: string[] = [];
      try {
        await store.transaction((w) => ensureVersion(reads, recordingWriter(w, created), wf, deps.now()));
        return;
      } catch (err) {
        const code = err instanceof StoreError ? err.code : undefined;
        if ((code !== 'STORE_CONFLICT' && code !== 'STORE_ALREADY_EXISTS') || attempt >= VERSION_ATTEMPTS)
          throw err;
        for (const v of created) await store.getLive('WorkflowVersion', ns, v);
        current = await store.getLive<Workflow>('Workflow', ns, name);
      }
    }
  };

  return async (app) => {
    app.post<{ Params: NsParams; Body: unknown }>('/namespaces/:ns/workflows', async (req, reply) => {
      const ns = req.params.ns;
      const wf = workflowFromBody(req.body, ns);
      assertVersionable(wf, undefined);
      const saved = await store.transaction((w) => w.create<Workflow>('Workflow', wf));
      await version(saved.value);
      return reply.code(201).send(store.get('Workflow', ns, saved.value.metadata.name));
    });

    app.put<{ Params: NameParams; Body: unknown }>('/namespaces/:ns/workflows/:name', async (req, reply) => {
      const ns = req.params.ns;
      const name = req.params.name;
      const wf = workflowFromBody(req.body, ns, name);
      const cur = store.get<Workflow>('Workflow', ns, name);
      assertVersionable(wf, cur);
      // the spec is the author's: updateWorkflowSpec, with the client's resourceVersion when it
      // gave one (409 when the Workflow moved on since it read it)
      const saved = await store.transaction((w) =>
        cur ? w.updateWorkflowSpec<Workflow>(wf) : w.create<Workflow>('Workflow', wf),
      );
      await version(saved.value);
      return reply.code(cur ? 200 : 201).send(store.get('Workflow', ns, name));
    });

    app.get<{ Params: NsParams; Querystring: Query }>('/namespaces/:ns/workflows', async (req) => {
      const ns = req.params.ns;
      const limit = pageLimit(req.query.limit);
      const page = store.list<Workflow>('Workflow', ns, {
        ...(limit ? { limit } : {}),
        ...(req.query.continue ? { continue: req.query.continue } : {}),
      });
      return { items: page.items, ...(page.continue ? { continue: page.continue } : {}) };
    });

    app.get<{ Params: NameParams }>('/namespaces/:ns/workflows/:name', async (req) => {
      const wf = store.get('Workflow', req.params.ns, req.params.name);
      if (!wf)
        throw new ApiError('API_NOT_FOUND', `workflow "${req.params.ns}/${req.params.name}" not found`);
      return wf;
    });

    app.delete<{ Params: NameParams }>('/namespaces/:ns/workflows/:name', async (req, reply) => {
      // versions stay while runs may still need them (see workflow-api.md)
      const deleted = await store.transaction((w) => w.delete('Workflow', req.params.ns, req.params.name));
      if (!deleted.value) {
        throw new ApiError('API_NOT_FOUND', `workflow "${req.params.ns}/${req.params.name}" not found`);
      }
      return reply.code(204).send();
    });

    app.get<{ Params: NameParams }>('/namespaces/:ns/workflows/:name/versions', async (req) => {
      const items = store
        .list<WorkflowVersion>('WorkflowVersion', req.params.ns, {
          labels: { [WORKFLOW_LABEL]: req.params.name },
        })
        .items.sort((a, b) => a.spec.version - b.spec.version);
      return { items };
    });

    app.get<{ Params: NameParams & { version: string } }>(
      '/namespaces/:ns/workflows/:name/versions/:version',
      async (req) => {
        const n = Number(req.params.version);
        if (!Number.isInteger(n) || n < 1) {
          throw new ApiError(
            'API_BAD_REQUEST',
            `version: expected a positive integer, got "${req.params.version}"`,
          );
        }
        const v = store.get<Stored<WorkflowVersion>>(
          'WorkflowVersion',
          req.params.ns,
          `${req.params.name}-v${n}`,
        );
        if (!v) throw new ApiError('API_NOT_FOUND', `workflow "${req.params.name}" has no version ${n}`);
        return v;
      },
    );
  };
}
