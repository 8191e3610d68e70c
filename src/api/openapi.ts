// The OpenAPI 3.0 document of the REST API, generated from the same zod schemas that validate
// requests (src/crds for the resources, the route modules for request bodies).
import { z } from 'zod';
import { openApiSchema, toStructural } from '../crds/crd.ts';
import {
  DataArtifactSchema,
  WorkflowRunSchema,
  WorkflowSchema,
  WorkflowVersionSchema,
} from '../crds/index.ts';
import { pathParamSchema, ROUTE_QUERY } from './http.ts';
import { AnnounceArtifactRequestSchema, ARTIFACT_CONSUMERS_SCHEMA } from './routes/artifacts.ts';
import { BackfillRequestSchema } from './routes/backfill.ts';
import { RestartRunRequestSchema, StartRunRequestSchema } from './routes/runs.ts';

type Json = Record<string, unknown>;

function requestSchema(schema: z.ZodType): Json {
  return toStructural(
    z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Json,
  );
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ content: { 'application/json': { schema } } });
/** Request bodies: JSON, or the same object as YAML (manifests as kubectl users write them). */
const jsonOrYaml = (schema: Json) => ({
  content: { 'application/json': { schema }, 'application/yaml': { schema } },
});
const list = (item: string) =>
  json({
    type: 'object',
    properties: { items: { type: 'array', items: ref(item) }, continue: { type: 'string' } },
  });
const problem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ref('Problem') } },
});
const errors = {
  '400': problem('Bad request (malformed body or query)'),
  '401': problem('Missing or wrong bearer token'),
  '403': problem('Foreign Host header, or a cross-origin write'),
  '404': problem('Not found'),
  '413': problem('Body larger than the server limit (1 MiB by default)'),
  '429': problem('Too many open streams (log follows and watches; --max-streams)'),
  '415': problem('Unsupported content-type (send application/json or application/yaml)'),
  '503': problem('The store could not be reached (operator mode: the Kubernetes API server)'),
};
/** A path parameter, with the name rule the server enforces (src/api/http.ts). */
const pathParam = (name: string, description: string) => ({
  name,
  in: 'path',
  required: true,
  schema: pathParamSchema(name),
  description,
});
const ns = pathParam('ns', 'Namespace (tenant): a DNS-1123 label');
const query = (name: string, description: string) => ({
  name,
  in: 'query',
  required: false,
  schema: { type: 'string' },
  description,
});
/** The query parameters of a route, from the table the server enforces (src/api/http.ts). */
const queryOf = (route: string) =>
  Object.entries(ROUTE_QUERY[route] ?? {})
    .filter(([name]) => !name.endsWith('.*'))
    .map(([name, description]) => query(name, description));

export function buildOpenApi(): Json {
  const wfName = pathParam('name', 'Workflow name: a DNS-1123 subdomain');
  const runName = pathParam('run', 'WorkflowRun name: a DNS-1123 subdomain');
  return {
    openapi: '3.0.3',
    info: {
      title: 'Meson REST API',
      version: 'v1',
      description: 'Workflows as a service: workflows, versions, runs, step logs, data artifacts, backfills.',
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Workflow: openApiSchema(WorkflowSchema),
        WorkflowVersion: openApiSchema(WorkflowVersionSchema),
        WorkflowRun: openApiSchema(WorkflowRunSchema),
        DataArtifact: openApiSchema(DataArtifactSchema),
        StartRunRequest: requestSchema(StartRunRequestSchema),
        RestartRunRequest: requestSchema(RestartRunRequestSchema),
        AnnounceArtifactRequest: requestSchema(AnnounceArtifactRequestSchema),
        BackfillRequest: requestSchema(BackfillRequestSchema),
        BackfillResponse: {
          type: 'object',
          properties: {
            backfill: { type: 'string' },
            parallelism: { type: 'integer' },
            priority: { type: 'integer' },
            runs: { type: 'array', items: { type: 'string' } },
          },
        },
        Problem: {
          type: 'object',
          required: ['type', 'title', 'status', 'detail', 'code'],
          properties: {
            type: { type: 'string' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { type: 'string', description: 'Stable error code, e.g. API_NOT_FOUND' },
            issues: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  path: { type: 'string' },
                  message: { type: 'string' },
                  code: { type: 'string' },
                },
              },
            },
          },
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/api/v1/namespaces/{ns}/workflows': {
        parameters: [ns],
        get: {
          operationId: 'listWorkflows',
          parameters: queryOf('GET /api/v1/namespaces/:ns/workflows'),
          responses: { '200': { description: 'Workflows', ...list('Workflow') }, ...errors },
        },
        post: {
          operationId: 'createWorkflow',
          requestBody: { required: true, ...jsonOrYaml(ref('Workflow')) },
          responses: {
            '201': { description: 'Created; version 1 made', ...json(ref('Workflow')) },
            '409': problem('Already exists'),
            '422': problem('Invalid Workflow (issues name the field paths)'),
            ...errors,
          },
        },
      },
      '/api/v1/namespaces/{ns}/workflows/{name}': {
        parameters: [ns, wfName],
        get: {
          operationId: 'getWorkflow',
          responses: { '200': { description: 'The Workflow', ...json(ref('Workflow')) }, ...errors },
        },
        put: {
          operationId: 'putWorkflow',
          requestBody: { required: true, ...jsonOrYaml(ref('Workflow')) },
          responses: {
            '200': { description: 'Updated (a new version when the spec changed)', ...json(ref('Workflow')) },
            '201': { description: 'Created', ...json(ref('Workflow')) },
            '409': problem('resourceVersion conflict'),
            '422': problem('Invalid Workflow'),
            ...errors,
          },
        },
        delete: {
          operationId: 'deleteWorkflow',
          responses: { '204': { description: 'Deleted' }, ...errors },
        },
      },
      '/api/v1/namespaces/{ns}/workflows/{name}/versions': {
        parameters: [ns, wfName],
        get: {
          operationId: 'listVersions',
          responses: {
            '200': { description: 'Versions, oldest first', ...list('WorkflowVersion') },
            ...errors,
          },
        },
      },
      '/api/v1/namespaces/{ns}/workflows/{name}/versions/{version}': {
        parameters: [ns, wfName, pathParam('version', 'Version number')],
        get: {
          operationId: 'getVersion',
          responses: { '200': { description: 'The version', ...json(ref('WorkflowVersion')) }, ...errors },
        },
      },
      '/api/v1/namespaces/{ns}/workflows/{name}/runs': {
        parameters: [ns, wfName],
        post: {
          operationId: 'startRun',
          requestBody: { required: false, ...json(ref('StartRunRequest')) },
          responses: { '201': { description: 'The new run', ...json(ref('WorkflowRun')) }, ...errors },
        },
      },
      '/api/v1/namespaces/{ns}/workflows/{name}/backfill': {
        parameters: [ns, wfName],
        post: {
          operationId: 'backfill',
          requestBody: { required: true, ...json(ref('BackfillRequest')) },
          responses: { '201': { description: 'Runs created', ...json(ref('BackfillResponse')) }, ...errors },
        },
      },
      '/api/v1/namespaces/{ns}/runs': {
        parameters: [ns],
        get: {
          operationId: 'listRuns',
          description:
            'Runs newest first (creationTimestamp, then name, descending). With watch=true, a text/event-stream of {type, object} events (ADDED, MODIFIED, DELETED; BOOKMARK first) with id: resourceVersion.',
          parameters: queryOf('GET /api/v1/namespaces/:ns/runs'),
          responses: {
            '200': {
              description: 'Runs (metadata.resourceVersion: where a watch may resume), or an event stream',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      items: { type: 'array', items: ref('WorkflowRun') },
                      continue: { type: 'string' },
                      metadata: { type: 'object', properties: { resourceVersion: { type: 'string' } } },
                    },
                  },
                },
                'text/event-stream': { schema: { type: 'string' } },
              },
            },
            ...errors,
          },
        },
        post: {
          operationId: 'createRun',
          requestBody: { required: true, ...jsonOrYaml(ref('WorkflowRun')) },
          responses: { '201': { description: 'The new run', ...json(ref('WorkflowRun')) }, ...errors },
        },
      },
      '/api/v1/namespaces/{ns}/runs/{run}': {
        parameters: [ns, runName],
        get: {
          operationId: 'getRun',
          parameters: queryOf('GET /api/v1/namespaces/:ns/runs/:run'),
          responses: {
            '200': { description: 'The run with its step instances', ...json(ref('WorkflowRun')) },
            ...errors,
          },
        },
        delete: { operationId: 'deleteRun', responses: { '204': { description: 'Deleted' }, ...errors } },
      },
      '/api/v1/namespaces/{ns}/runs/{run}/events': {
        parameters: [ns, runName],
        get: {
          operationId: 'watchRun',
          description:
            'The run and its step instances as server-sent events until the run ends: {type, object} for the run, {type, step} for a step instance; heartbeats as comments.',
          parameters: queryOf('GET /api/v1/namespaces/:ns/runs/:run/events'),
          responses: {
            '200': {
              description: 'Event stream',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...errors,
          },
        },
      },
      '/api/v1/namespaces/{ns}/runs/{run}/steps': {
        parameters: [ns, runName],
        get: {
          operationId: 'listRunSteps',
          parameters: queryOf('GET /api/v1/namespaces/:ns/runs/:run/steps'),
          responses: {
            '200': {
              description: 'Step instances',
              ...json({
                type: 'object',
                properties: {
                  items: { type: 'array', items: { type: 'object' } },
                  continue: { type: 'string' },
                },
              }),
            },
            ...errors,
          },
        },
      },
      '/api/v1/namespaces/{ns}/runs/{run}/steps/{step}/logs': {
        parameters: [ns, runName, pathParam('step', 'Step instance id, e.g. agg[3]')],
        get: {
          operationId: 'getStepLogs',
          parameters: queryOf('GET /api/v1/namespaces/:ns/runs/:run/steps/:step/logs'),
          responses: {
            '200': { description: 'The log', content: { 'text/plain': { schema: { type: 'string' } } } },
            ...errors,
          },
        },
      },
      '/api/v1/namespaces/{ns}/runs/{run}/steps/{step}/attempts': {
        parameters: [ns, runName, pathParam('step', 'Step instance id')],
        get: {
          operationId: 'listStepAttempts',
          responses: {
            '200': {
              description:
                "Each launch of each attempt with the executor's milestones (epoch ms: queued, launched, running, finished)",
              ...json({
                type: 'object',
                properties: {
                  items: {
                    type: 'array',
                    items: {
                      type: 'object',
                      properties: {
                        attempt: { type: 'integer' },
                        launchId: { type: 'string' },
                        phase: { type: 'string' },
                        exitCode: { type: 'integer' },
                        message: { type: 'string' },
                        milestones: { type: 'object', additionalProperties: { type: 'number' } },
                      },
                    },
                  },
                },
              }),
            },
            ...errors,
          },
        },
      },
      '/api/v1/namespaces/{ns}/runs/{run}/stop': {
        parameters: [ns, runName],
        post: {
          operationId: 'stopRun',
          responses: { '202': { description: 'Stop requested', ...json(ref('WorkflowRun')) }, ...errors },
        },
      },
      '/api/v1/namespaces/{ns}/runs/{run}/restart': {
        parameters: [ns, runName],
        post: {
          operationId: 'restartRun',
          requestBody: { required: false, ...json(ref('RestartRunRequest')) },
          responses: {
            '201': { description: 'The new run (initiator restart)', ...json(ref('WorkflowRun')) },
            '409': problem('The run is not Failed or Stopped'),
            ...errors,
          },
        },
      },
      '/api/v1/namespaces/{ns}/artifacts': {
        parameters: [ns],
        get: {
          operationId: 'listArtifacts',
          parameters: queryOf('GET /api/v1/namespaces/:ns/artifacts'),
          responses: { '200': { description: 'Artifacts', ...list('DataArtifact') }, ...errors },
        },
        post: {
          operationId: 'announceArtifact',
          requestBody: { required: true, ...jsonOrYaml(ref('AnnounceArtifactRequest')) },
          responses: { '201': { description: 'Announced', ...json(ref('DataArtifact')) }, ...errors },
        },
      },
      '/api/v1/namespaces/{ns}/artifacts/{name}': {
        parameters: [ns, pathParam('name', 'DataArtifact object name')],
        get: {
          operationId: 'getArtifact',
          responses: { '200': { description: 'The artifact', ...json(ref('DataArtifact')) }, ...errors },
        },
      },
      '/api/v1/namespaces/{ns}/artifacts/{name}/consumers': {
        parameters: [ns, pathParam('name', 'DataArtifact object name')],
        get: {
          operationId: 'artifactConsumers',
          description:
            'Lineage: the workflows whose artifact trigger or step inputs name this artifact (first page), and the runs an artifact trigger started with it, newest first. A page reads `limit` artifact-triggered runs (more, up to 5000, while none matches) and returns the matches among them: a page may be short, and `continue` says there is more.',
          parameters: queryOf('GET /api/v1/namespaces/:ns/artifacts/:name/consumers'),
          responses: {
            '200': { description: 'Consumers', ...json(ARTIFACT_CONSUMERS_SCHEMA as unknown as Json) },
            ...errors,
          },
        },
      },
    },
  };
}
