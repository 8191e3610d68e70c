// DataArtifacts: announce (the external trigger: steps waiting for inputs and artifact
// triggers react to it) and list, filtered by name and partition.
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { dnsName } from '../../controller/names.ts';
import { API_VERSION, type DataArtifact, PartitionSchema } from '../../crds/index.ts';
import { nameIssue, userMetadataMapIssues } from '../../crds/names.ts';
import type { Stored } from '../../store/types.ts';
import type { RouteDeps } from '../app.ts';
import { assertNoIssues, pageLimit, parseWith, type Query } from '../http.ts';
import { ApiError } from '../problems.ts';

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

    app.get<{ Params: { ns: string; name: string } }>('/namespaces/:ns/artifacts/:name', async (req) => {
      const a = store.get('DataArtifact', req.params.ns, req.params.name);
      if (!a) throw new ApiError('API_NOT_FOUND', `artifact "${req.params.ns}/${req.params.name}" not found`);
      return a;
    });
  };
}
