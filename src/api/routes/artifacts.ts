// DataArtifacts: announce (the external trigger: steps waiting for inputs and artifact
// triggers react to it) and list, filtered by name and partition.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { dnsName } from '../../controller/names.ts';
import type { WorkflowRun } from '../../crds/index.ts';
import { API_VERSION, type DataArtifact, PartitionSchema } from '../../crds/index.ts';
import { nameIssue, userMetadataMapIssues } from '../../crds/names.ts';
import type { Stored } from '../../store/types.ts';
import type { RouteDeps } from '../app.ts';
import { assertNoIssues, pageLimit, parseWith, type Query } from '../http.ts';
import { type ArtifactKey, startedBy, type WorkflowConsumer, workflowConsumes } from '../lineage.ts';
import { ApiError } from '../problems.ts';

/** Workflow consumers listed at most (then `workflowsTruncated`). */
export const MAX_CONSUMER_WORKFLOWS = 500;
/** Artifact-triggered runs one consumers request reads at most while looking for a match. */
export const MAX_CONSUMER_SCAN = 5000;

const partitionJson = {
  type: 'object',
  additionalProperties: { anyOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }] },
} as const;

/** GET .../artifacts/:name/consumers: its JSON schema (the route's and the OpenAPI document's). */
export const ARTIFACT_CONSUMERS_SCHEMA = {
  type: 'object',
  required: ['artifact', 'runs'],
  properties: {
    artifact: {
      type: 'object',
      required: ['name'],
      properties: { name: { type: 'string' }, partition: partitionJson },
    },
    workflows: {
      type: 'array',
      description: 'Workflows whose artifact trigger or step inputs name this artifact (first page only)',
      items: {
        type: 'object',
        required: ['workflow', 'via'],
        properties: {
          workflow: { type: 'string' },
          via: { type: 'string', enum: ['trigger', 'input'] },
          step: { type: 'string' },
          partition: partitionJson,
        },
      },
    },
    workflowsTruncated: { type: 'boolean' },
    runs: {
      type: 'array',
      description: 'Runs an artifact trigger started with this artifact, newest first',
      items: {
        type: 'object',
        required: ['name', 'workflow'],
        properties: {
          name: { type: 'string' },
          workflow: { type: 'string' },
          phase: { type: 'string' },
          creationTimestamp: { type: 'string' },
        },
      },
    },
    continue: { type: 'string', description: 'Token of the next page of runs' },
  },
} as const;

export const AnnounceArtifactRequestSchema = z.strictObject({
  name: z.string().min(1),
  partition: PartitionSchema.optional(),
  location: z.string().optional(),
  metadata: z
    .strictObject({ name: z.string().optional(), labels: z.record(z.string(), z.string()).optional() })
    .optional(),
});

/** `partition.k=v` query parameters, or `partition=k=v,k2=v2`. */
function partitionFilter(query: Query): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    if (k.startsWith('partition.')) out[k.slice('partition.'.length)] = v;
    else if (k === 'partition') {
      for (const pair of v.split(',')) {
        const eq = pair.indexOf('=');
        if (eq <= 0) throw new ApiError('API_BAD_REQUEST', `partition: expected k=v[,k=v...], got "${v}"`);
        out[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
    }
  }
  return out;
}

export function artifactRoutes(deps: RouteDeps): FastifyPluginAsync {
  const { store } = deps;
  return async (app) => {
    app.post<{ Params: { ns: string }; Body: unknown }>('/namespaces/:ns/artifacts', async (req, reply) => {
      const ns = req.params.ns;
      const body = parseWith(AnnounceArtifactRequestSchema, req.body, 'body');
      assertNoIssues(
        [
          ...(body.metadata?.name === undefined
            ? []
            : nameIssue(['metadata', 'name'], 'name', body.metadata.name)),
          ...userMetadataMapIssues(body.metadata?.labels, ['metadata', 'labels'], 'labels'),
        ],
        'the DataArtifact is invalid',
      );
      const art: DataArtifact = {
        apiVersion: API_VERSION,
        kind: 'DataArtifact',
        metadata: {
          namespace: ns,
          ...(body.metadata?.name
            ? { name: body.metadata.name }
            : { generateName: `${dnsName(body.name).replace(/^-+/, '') || 'artifact'}-` }),
          labels: {
            'meson.dev/artifact': body.name
              .toLowerCase()
              .replace(/[^a-z0-9-_.]/g, '-')
              .slice(0, 63),
            ...(body.metadata?.labels ?? {}),
          },
        },
        spec: {
          name: body.name,
          ...(body.partition ? { partition: body.partition } : {}),
          ...(body.location ? { location: body.location } : {}),
        },
        status: { announcedAt: new Date(deps.now()).toISOString() },
      };
      const created = await store.transaction((w) => w.create('DataArtifact', art));
      return reply.code(201).send(created.value);
    });

    app.get<{ Params: { ns: string }; Querystring: Query }>('/namespaces/:ns/artifacts', async (req) => {
      const ns = req.params.ns;
      const name = req.query.name;
      const partition = partitionFilter(req.query);
      const limit = pageLimit(req.query.limit);
      const page = store.list<DataArtifact>('DataArtifact', ns, {
        ...(limit ? { limit } : {}),
        ...(req.query.continue ? { continue: req.query.continue } : {}),
        filter: (o) => {
          const a = o as Stored<DataArtifact>;
          if (name !== undefined && a.spec.name !== name) return false;
          const have = a.spec.partition ?? {};
          return Object.entries(partition).every(([k, v]) => k in have && String(have[k]) === v);
        },
      });
      return { items: page.items, ...(page.continue ? { continue: page.continue } : {}) };
    });

    // lineage: who consumes the artifact (workflows by trigger or step input; the runs it started)
    app.get<{ Params: { ns: string; name: string }; Querystring: Query }>(
      '/namespaces/:ns/artifacts/:name/consumers',
      { schema: { response: { 200: ARTIFACT_CONSUMERS_SCHEMA } } },
      async (req) => {
        const { ns, name } = req.params;
        const a = store.get<DataArtifact>('DataArtifact', ns, name);
        if (!a) throw new ApiError('API_NOT_FOUND', `artifact "${ns}/${name}" not found`);
        const artifact: ArtifactKey = {
          name: a.spec.name,
          ...(a.spec.partition ? { partition: a.spec.partition } : {}),
        };
        const limit = pageLimit(req.query.limit) ?? 100;
        const first = req.query.continue === undefined;
        // the workflows: on the first page only (the pages are the runs')
        const workflows: (WorkflowConsumer & { workflow: string })[] = [];
        let workflowsTruncated = false;
        if (first) {
          scan: for (const wf of store.list('Workflow', ns).items) {
            for (const c of workflowConsumes(wf.spec, artifact)) {
              if (workflows.length === MAX_CONSUMER_WORKFLOWS) {
                workflowsTruncated = true;
                break scan;
              }
              workflows.push({ workflow: wf.metadata.name, ...c });
            }
          }
        }
        // the runs: pages of artifact-triggered runs (newest first), up to MAX_CONSUMER_SCAN read
        // per request until one holds a match; `continue` resumes where the reading stopped
        let cont = req.query.continue;
        let runs: Stored<WorkflowRun>[] = [];
        for (let scanned = 0; ; ) {
          const page = deps.history.pageRuns<WorkflowRun>(ns, {
            initiator: 'artifact',
            limit,
            ...(cont ? { continue: cont } : {}),
          });
          scanned += page.items.length;
          runs = page.items.filter((r) => startedBy(r, artifact));
          cont = page.continue;
          if (runs.length > 0 || !cont || scanned >= MAX_CONSUMER_SCAN) break;
        }
        return {
          artifact,
          ...(first ? { workflows, ...(workflowsTruncated ? { workflowsTruncated } : {}) } : {}),
          runs: runs.map((r) => ({
            name: r.metadata.name,
            workflow: r.spec.workflow,
            ...(r.status?.phase ? { phase: r.status.phase } : {}),
            ...(r.metadata.creationTimestamp ? { creationTimestamp: r.metadata.creationTimestamp } : {}),
          })),
          ...(cont ? { continue: cont } : {}),
        };
      },
    );

    app.get<{ Params: { ns: string; name: string } }>('/namespaces/:ns/artifacts/:name', async (req) => {
      const a = store.get('DataArtifact', req.params.ns, req.params.name);
      if (!a) throw new ApiError('API_NOT_FOUND', `artifact "${req.params.ns}/${req.params.name}" not found`);
      return a;
    });
  };
}
