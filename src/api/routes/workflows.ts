// Workflows (create/update make versions synchronously, so a run can start right after) and
// their immutable versions.
import type { FastifyPluginAsync } from 'fastify';
import { ensureVersion } from '../../controller/workflows.ts';
import { API_VERSION, type Workflow, type WorkflowVersion } from '../../crds/index.ts';
import { validateDocument } from '../../crds/validate.ts';
import type { Stored } from '../../store/types.ts';
import { WORKFLOW_LABEL } from '../../versions/index.ts';
import type { RouteDeps } from '../app.ts';
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

export function workflowRoutes(deps: RouteDeps): FastifyPluginAsync {
  const { store } = deps;
  return async (app) => {
    app.post<{ Params: NsParams; Body: unknown }>('/namespaces/:ns/workflows', async (req, reply) => {
      const ns = req.params.ns;
      const wf = workflowFromBody(req.body, ns);
      const saved = store.transaction((w) => {
        const created = w.create<Workflow>('Workflow', wf);
        const status = ensureVersion(store, w, created, deps.now());
        assertReady(status);
        return { ...created, status };
      });
      return reply.code(201).send(store.get('Workflow', ns, saved.metadata.name));
    });

    app.put<{ Params: NameParams; Body: unknown }>('/namespaces/:ns/workflows/:name', async (req, reply) => {
      const ns = req.params.ns;
      const name = req.params.name;
      const wf = workflowFromBody(req.body, ns, name);
      const created = store.transaction((w) => {
        const cur = store.get<Workflow>('Workflow', ns, name);
        const saved = cur
          ? w.update<Workflow>('Workflow', {
              ...wf,
              metadata: { ...wf.metadata, resourceVersion: wf.metadata.resourceVersion },
            })
          : w.create<Workflow>('Workflow', wf);
        assertReady(ensureVersion(store, w, saved, deps.now()));
        return !cur;
      });
      return reply.code(created ? 201 : 200).send(store.get('Workflow', ns, name));
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
      if (!store.delete('Workflow', req.params.ns, req.params.name)) {
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
