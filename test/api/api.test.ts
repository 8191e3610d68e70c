// The REST API through inject() against a real standalone stack (store, controller, local
// executors), plus one test over real HTTP with a bearer token.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { createStandalone, type Standalone } from '../../src/controller/standalone.ts';
import {
  DataArtifactSchema,
  WorkflowRunSchema,
  WorkflowSchema,
  WorkflowVersionSchema,
} from '../../src/crds/index.ts';
import { SqliteAsyncStore } from '../../src/store/sqlite-async.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  opts: { token?: string } = {},
): Promise<{ app: FastifyInstance; s: Standalone; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'meson-api-'));
  const s = createStandalone({ dataDir: join(root, 'data'), cwd: root, pollMs: 50 });
  s.start();
  const app = await buildApp({
    store: new SqliteAsyncStore(s.store),
    ...(opts.token ? { token: opts.token } : {}),
  });
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => s.stop());
  cleanups.push(() => app.close());
  return { app, s, root };
}

const NS = '/api/v1/namespaces/team-a';

/** A WorkflowRun as the API answers it (only the fields the tests read). */
interface RunJson {
  metadata: { name: string };
  spec: { initiator: { type: string }; restartOf?: unknown };
  status: {
    phase: string;
    parameters: Record<string, unknown>;
    steps: { id: string; phase: string; outputs?: Record<string, unknown> }[];
  };
}

function workflow(name: string, definition: unknown, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name },
    spec: { definition, ...extra },
  };
}

async function waitForRun(app: FastifyInstance, name: string, ms = 20_000): Promise<RunJson> {
  const end = Date.now() + ms;
  for (;;) {
    const res = await app.inject({ method: 'GET', url: `${NS}/runs/${name}` });
    const phase = res.json().status?.phase;
    if (['Succeeded', 'Failed', 'Stopped'].includes(phase)) return res.json();
    if (Date.now() > end) throw new Error(`run ${name} still ${phase}`);
    await new Promise((r) => setTimeout(r, 30));
  }
}

describe('REST API', () => {
  it('creates a workflow with version 1, updates it into version 2, and lists versions', async () => {
    const { app } = await setup();
    const wf = workflow('hello', { step: { name: 'a', shell: { script: 'echo v1' } } });
    const created = await app.inject({ method: 'POST', url: `${NS}/workflows`, payload: wf });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({
      metadata: { name: 'hello', namespace: 'team-a' },
      status: { latestVersion: 1 },
    });
    // same spec: no new version
    const same = await app.inject({ method: 'PUT', url: `${NS}/workflows/hello`, payload: wf });
    expect(same.statusCode).toBe(200);
    expect(same.json().status.latestVersion).toBe(1);
    const changed = workflow('hello', { step: { name: 'a', shell: { script: 'echo v2' } } });
    const upd = await app.inject({ method: 'PUT', url: `${NS}/workflows/hello`, payload: changed });
    expect(upd.json().status).toMatchObject({ latestVersion: 2, activeVersion: 2 });
    const versions = await app.inject({ method: 'GET', url: `${NS}/workflows/hello/versions` });
    expect(versions.json().items.map((v: { spec: { version: number } }) => v.spec.version)).toEqual([1, 2]);
    const v1 = await app.inject({ method: 'GET', url: `${NS}/workflows/hello/versions/1` });
    expect(v1.json().spec.definition.step.shell.script).toBe('echo v1');
    const list = await app.inject({ method: 'GET', url: `${NS}/workflows` });
    expect(list.json().items).toHaveLength(1);
    expect((await app.inject({ method: 'DELETE', url: `${NS}/workflows/hello` })).statusCode).toBe(204);
    expect((await app.inject({ method: 'GET', url: `${NS}/workflows/hello` })).statusCode).toBe(404);
  });

  it('answers errors as problem+json with stable codes and field paths', async () => {
    const { app } = await setup();
    const missing = await app.inject({ method: 'GET', url: `${NS}/workflows/nope` });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(missing.json()).toMatchObject({ status: 404, code: 'API_NOT_FOUND' });
    const invalid = await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('bad', { step: { name: 'a', shell: { script: 'echo ${nosuch}' } } }),
    });
    expect(invalid.statusCode).toBe(422);
    expect(invalid.json()).toMatchObject({ code: 'API_INVALID' });
    expect(invalid.json().issues[0].path).toMatch(/spec\.definition\.step\.shell\.script/);
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('w', { step: { name: 'a', noop: {} } }),
    });
    const dup = await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('w', { step: { name: 'a', noop: {} } }),
    });
    expect(dup.json()).toMatchObject({ status: 409, code: 'API_ALREADY_EXISTS' });
    const badBody = await app.inject({
      method: 'POST',
      url: `${NS}/workflows/w/runs`,
      payload: { parameters: 5 },
    });
    expect(badBody.json()).toMatchObject({ status: 400, code: 'API_BAD_REQUEST' });
    const noRoute = await app.inject({ method: 'GET', url: '/api/v1/nothing' });
    expect(noRoute.json()).toMatchObject({ status: 404, code: 'API_NOT_FOUND' });
  });

  it('starts a run with parameters, gets it with steps and logs, lists runs by workflow and phase', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow(
        'greet',
        {
          sequence: [
            {
              step: {
                name: 'hi',
                shell: { script: 'echo "hello ${who}"; echo warn >&2; echo "n=7" >> "$MESON_OUTPUTS"' },
              },
            },
            { step: { name: 'after', shell: { script: 'echo "${steps.hi.outputs.n}"' } } },
          ],
        },
        { parameters: [{ name: 'who', type: 'string', value: 'world' }] },
      ),
    });
    const start = await app.inject({
      method: 'POST',
      url: `${NS}/workflows/greet/runs`,
      payload: { parameters: { who: 'api' } },
    });
    expect(start.statusCode).toBe(201);
    const name = start.json().metadata.name;
    const run = await waitForRun(app, name);
    expect(run.status).toMatchObject({ phase: 'Succeeded', parameters: { who: 'api' } });
    expect(run.spec.initiator).toEqual({ type: 'api' });
    expect(run.status.steps.map((s: { id: string; phase: string }) => [s.id, s.phase])).toEqual([
      ['hi', 'Succeeded'],
      ['after', 'Succeeded'],
    ]);
    expect(run.status.steps[0].outputs).toEqual({ n: 7 });
    const out = await app.inject({ method: 'GET', url: `${NS}/runs/${name}/steps/hi/logs` });
    expect(out.statusCode).toBe(200);
    expect(out.body).toBe('hello api\n');
    const err = await app.inject({ method: 'GET', url: `${NS}/runs/${name}/steps/hi/logs?stream=stderr` });
    expect(err.body).toBe('warn\n');
    expect((await app.inject({ method: 'GET', url: `${NS}/runs/${name}/steps/after/logs` })).body).toBe(
      '7\n',
    );
    const attempts = (await app.inject({ method: 'GET', url: `${NS}/runs/${name}/steps/hi/attempts` })).json()
      .items;
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, phase: 'Succeeded', exitCode: 0 });
    const m = attempts[0].milestones;
    expect(m.queued).toBeLessThanOrEqual(m.launched);
    expect(m.launched).toBeLessThanOrEqual(m.running);
    expect(m.running).toBeLessThanOrEqual(m.finished);

    // a second, failing workflow for the filters
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('fails', { step: { name: 'x', shell: { script: 'exit 1' } } }),
    });
    const f = (await app.inject({ method: 'POST', url: `${NS}/workflows/fails/runs` })).json().metadata.name;
    await waitForRun(app, f);
    const byWf = await app.inject({ method: 'GET', url: `${NS}/runs?workflow=greet` });
    expect(byWf.json().items.map((r: RunJson) => r.metadata.name)).toEqual([name]);
    const failed = await app.inject({ method: 'GET', url: `${NS}/runs?phase=Failed` });
    expect(failed.json().items.map((r: RunJson) => r.metadata.name)).toEqual([f]);
    const page1 = await app.inject({ method: 'GET', url: `${NS}/runs?limit=1` });
    expect(page1.json().items).toHaveLength(1);
    const page2 = await app.inject({
      method: 'GET',
      url: `${NS}/runs?limit=1&continue=${page1.json().continue}`,
    });
    expect(page2.json().items).toHaveLength(1);
    expect(page2.json().continue).toBeUndefined();
    expect(page2.json().items[0].metadata.name).not.toBe(page1.json().items[0].metadata.name);
  });

  it('stops a run and restarts a failed run from failed, reusing what succeeded', async () => {
    const { app, root } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('slow', { step: { name: 'z', shell: { script: 'sleep 30' } } }),
    });
    const slow = (await app.inject({ method: 'POST', url: `${NS}/workflows/slow/runs` })).json().metadata
      .name;
    for (let i = 0; i < 200; i++) {
      const steps = (
        await app.inject({ method: 'GET', url: `${NS}/runs/${slow}/steps?phase=Running` })
      ).json().items;
      if (steps.length > 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await app.inject({ method: 'POST', url: `${NS}/runs/${slow}/stop` })).statusCode).toBe(202);
    expect((await waitForRun(app, slow)).status.phase).toBe('Stopped');

    // fails while a marker file is missing; the restart (after creating it) re-runs only that step
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('flaky', {
        sequence: [
          { step: { name: 'first', shell: { script: 'echo x >> first.log' } } },
          { step: { name: 'second', shell: { script: 'test -f marker' } } },
        ],
      }),
    });
    const r1 = (await app.inject({ method: 'POST', url: `${NS}/workflows/flaky/runs` })).json().metadata.name;
    expect((await waitForRun(app, r1)).status.phase).toBe('Failed');
    const { writeFileSync, readFileSync } = await import('node:fs');
    writeFileSync(join(root, 'marker'), '');
    const restart = await app.inject({
      method: 'POST',
      url: `${NS}/runs/${r1}/restart`,
      payload: { from: 'failed' },
    });
    expect(restart.statusCode).toBe(201);
    expect(restart.json().spec).toMatchObject({
      initiator: { type: 'restart' },
      restartOf: { run: r1, from: 'failed' },
    });
    const r2 = await waitForRun(app, restart.json().metadata.name);
    expect(r2.status.phase).toBe('Succeeded');
    expect(readFileSync(join(root, 'first.log'), 'utf8')).toBe('x\n');
    const conflict = await app.inject({
      method: 'POST',
      url: `${NS}/runs/${r2.metadata.name}/restart`,
      payload: {},
    });
    expect(conflict.json()).toMatchObject({ status: 409, code: 'API_CONFLICT' });
  });

  it('announces artifacts that release a waiting step, and lists them by name and partition', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('consumer', {
        step: { name: 'use', noop: {}, inputs: [{ name: 'views', partition: { country: 'US' } }] },
      }),
    });
    const run = (await app.inject({ method: 'POST', url: `${NS}/workflows/consumer/runs` })).json().metadata
      .name;
    for (let i = 0; i < 100; i++) {
      const s = (await app.inject({ method: 'GET', url: `${NS}/runs/${run}/steps` })).json().items[0];
      if (s?.phase === 'WaitingForInputs') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const other = await app.inject({
      method: 'POST',
      url: `${NS}/artifacts`,
      payload: { name: 'views', partition: { country: 'CA' } },
    });
    expect(other.statusCode).toBe(201);
    const ok = await app.inject({
      method: 'POST',
      url: `${NS}/artifacts`,
      payload: { name: 'views', partition: { country: 'US', dateint: 20240101 }, location: 's3://x' },
    });
    expect(ok.json()).toMatchObject({
      kind: 'DataArtifact',
      spec: { name: 'views' },
      status: { announcedAt: expect.any(String) },
    });
    expect((await waitForRun(app, run)).status.phase).toBe('Succeeded');
    const byName = await app.inject({ method: 'GET', url: `${NS}/artifacts?name=views` });
    expect(byName.json().items).toHaveLength(2);
    const byPart = await app.inject({
      method: 'GET',
      url: `${NS}/artifacts?name=views&partition.country=US`,
    });
    expect(byPart.json().items.map((a: { spec: { location?: string } }) => a.spec.location)).toEqual([
      's3://x',
    ]);
    const byPart2 = await app.inject({ method: 'GET', url: `${NS}/artifacts?partition=country=CA` });
    expect(byPart2.json().items).toHaveLength(1);
  });

  it('backfills a date range with initiator backfill, at most `parallelism` runs at a time', async () => {
    const { app, s } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow(
        'daily',
        { step: { name: 'd', shell: { script: 'echo ${dateint} >> days.log; sleep 0.2' } } },
        { parameters: [{ name: 'dateint', type: 'long', value: 0 }] },
      ),
    });
    let maxActive = 0;
    s.store.watch((c) => {
      if (c.kind !== 'WorkflowRun') return;
      const active = s.store
        .list('WorkflowRun', 'team-a')
        .items.filter((r) => (r.status as { phase?: string } | undefined)?.phase === 'Running').length;
      maxActive = Math.max(maxActive, active);
    });
    const res = await app.inject({
      method: 'POST',
      url: `${NS}/workflows/daily/backfill`,
      payload: { parameter: 'dateint', from: 20240130, to: 20240202, parallelism: 2, priority: -5 },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json().runs).toHaveLength(4);
    const runs = await Promise.all(res.json().runs.map((n: string) => waitForRun(app, n, 30_000)));
    expect(runs.map((r) => r.status.phase)).toEqual(['Succeeded', 'Succeeded', 'Succeeded', 'Succeeded']);
    expect(runs.map((r) => r.status.parameters.dateint).sort()).toEqual([
      20240130, 20240131, 20240201, 20240202,
    ]);
    expect(runs.every((r) => r.spec.initiator.type === 'backfill')).toBe(true);
    expect(maxActive).toBeLessThanOrEqual(2);
    const bad = await app.inject({
      method: 'POST',
      url: `${NS}/workflows/daily/backfill`,
      payload: { parameter: 'dateint', from: 20240202, to: 20240101 },
    });
    expect(bad.json()).toMatchObject({ status: 400, code: 'API_BAD_REQUEST' });
  });

  it('serves an OpenAPI document that validates', async () => {
    const { app } = await setup();
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    await expect(SwaggerParser.validate(structuredClone(doc))).resolves.toBeTruthy();
    expect(Object.keys(doc.paths)).toContain('/api/v1/namespaces/{ns}/workflows/{name}/backfill');
  });

  it('requires the bearer token over real HTTP when one is configured', async () => {
    const { app } = await setup({ token: 's3cret' });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    const anon = await fetch(`${url}${NS}/workflows`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('content-type')).toMatch(/problem\+json/);
    expect(await anon.json()).toMatchObject({ code: 'API_UNAUTHORIZED' });
    const wrong = await fetch(`${url}${NS}/workflows`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`${url}${NS}/workflows`, {
      method: 'POST',
      headers: { authorization: 'Bearer s3cret', 'content-type': 'application/json' },
      body: JSON.stringify(workflow('http', { step: { name: 'a', noop: {} } })),
    });
    expect(ok.status).toBe(201);
    const run = await fetch(`${url}${NS}/workflows/http/runs`, {
      method: 'POST',
      headers: { authorization: 'Bearer s3cret', 'content-type': 'application/json' },
      body: '{}',
    });
    expect(run.status).toBe(201);
    // the document and health check stay public
    expect((await fetch(`${url}/openapi.json`)).status).toBe(200);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('answers objects that conform to the resource schemas, paging steps of a large run', async () => {
    const { app } = await setup();
    const wfRes = await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('wide', {
        foreach: { items: 'range(30)', as: 'i', do: { step: { name: 'n', noop: {} } } },
      }),
    });
    expect(() => WorkflowSchema.parse(wfRes.json())).not.toThrow();
    const v = await app.inject({ method: 'GET', url: `${NS}/workflows/wide/versions/1` });
    expect(() => WorkflowVersionSchema.parse(v.json())).not.toThrow();
    const name = (await app.inject({ method: 'POST', url: `${NS}/workflows/wide/runs` })).json().metadata
      .name;
    await waitForRun(app, name);
    const res = await app.inject({ method: 'GET', url: `${NS}/runs/${name}?stepsLimit=10` });
    const run = WorkflowRunSchema.parse(res.json());
    expect(run.status?.steps).toHaveLength(10);
    expect(run.status?.summary).toMatchObject({ total: 30, truncated: true });
    const rest = await app.inject({
      method: 'GET',
      url: `${NS}/runs/${name}/steps?limit=100&continue=${res.headers['x-meson-steps-continue']}`,
    });
    expect(rest.json().items).toHaveLength(20);
    const art = await app.inject({
      method: 'POST',
      url: `${NS}/artifacts`,
      payload: { name: 'a', partition: { k: 'v' } },
    });
    expect(() => DataArtifactSchema.parse(art.json())).not.toThrow();
  });

  it('accepts YAML manifests and refuses unsupported media types with 415', async () => {
    const { app } = await setup();
    const yaml = [
      'apiVersion: meson.dev/v1alpha1',
      'kind: Workflow',
      'metadata: { name: from-yaml }',
      'spec:',
      '  definition:',
      '    step: { name: a, noop: {} }',
      '',
    ].join('\n');
    const put = await app.inject({
      method: 'PUT',
      url: `${NS}/workflows/from-yaml`,
      headers: { 'content-type': 'application/yaml' },
      payload: yaml,
    });
    expect(put.statusCode, put.body).toBe(201);
    expect(put.json().status.latestVersion).toBe(1);
    const bad = await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      headers: { 'content-type': 'text/yaml' },
      payload: 'metadata:\n  name: [unclosed\n',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'API_BAD_REQUEST', detail: expect.stringMatching(/line \d+/) });
    const art = await app.inject({
      method: 'POST',
      url: `${NS}/artifacts`,
      headers: { 'content-type': 'application/x-yaml' },
      payload: 'name: views\npartition: { country: US }\n',
    });
    expect(art.statusCode).toBe(201);
    const plain = await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
    });
    expect(plain.statusCode).toBe(415);
    expect(plain.headers['content-type']).toMatch(/problem\+json/);
    expect(plain.json()).toMatchObject({ status: 415, code: 'API_UNSUPPORTED_MEDIA_TYPE' });
  });
  it('refuses a run start with bad parameters or version (422 naming them) instead of a run that fails', async () => {
    const { app, s } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow(
        'typed',
        { step: { name: 'a', shell: { script: 'echo ${n} ${d}' } } },
        {
          parameters: [
            { name: 'n', type: 'long', value: 1 },
            { name: 'd', type: 'long', expression: 'dateIntAdd(n, 1)' },
          ],
        },
      ),
    });
    const start = (payload: unknown) =>
      app.inject({ method: 'POST', url: `${NS}/workflows/typed/runs`, payload: payload as object });
    const wrongType = await start({ parameters: { n: 'abc' } });
    expect(wrongType.statusCode).toBe(422);
    expect(wrongType.json()).toMatchObject({
      code: 'API_INVALID',
      issues: [{ path: 'parameters.n', message: expect.stringContaining('expected a long') }],
    });
    const unknown = await start({ parameters: { nosuch: 1 } });
    expect(unknown.statusCode).toBe(422);
    expect(unknown.json().issues[0]).toMatchObject({ path: 'parameters.nosuch', code: 'PARAM_UNKNOWN' });
    expect(unknown.json().detail).toContain('declares d, n');
    const noVersion = await start({ version: 7 });
    expect(noVersion.json()).toMatchObject({ status: 422, issues: [{ path: 'version' }] });
    const kubectlStyle = await app.inject({
      method: 'POST',
      url: `${NS}/runs`,
      payload: { spec: { workflow: 'typed', parameters: [{ name: 'n', value: [1] }] } },
    });
    expect(kubectlStyle.json()).toMatchObject({ status: 422, issues: [{ path: 'spec.parameters.n' }] });
    expect(s.store.list('WorkflowRun', 'team-a').items).toHaveLength(0);
    const good = await start({ parameters: { n: 20240131 } });
    expect(good.statusCode).toBe(201);
    expect((await waitForRun(app, good.json().metadata.name)).status.parameters).toEqual({
      n: 20240131,
      d: 20240201,
    });
  });

  it('backfills a long parameter from ISO dates as dateints, and refuses an undeclared parameter', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow(
        'iso',
        { step: { name: 'd', shell: { script: 'echo ${day}' } } },
        {
          parameters: [
            { name: 'day', type: 'long', value: 0 },
            { name: 'label', type: 'string', value: 'x' },
          ],
          // a backfill must run every date: the workflow's skip policy does not drop its runs
          concurrency: { maxActiveRuns: 1, policy: 'skip' },
        },
      ),
    });
    const res = await app.inject({
      method: 'POST',
      url: `${NS}/workflows/iso/backfill`,
      payload: { parameter: 'day', from: '2024-02-28', to: '2024-03-01', parallelism: 3 },
    });
    expect(res.statusCode, res.body).toBe(201);
    const runs = await Promise.all(res.json().runs.map((n: string) => waitForRun(app, n)));
    expect(runs.map((r) => [r.status.phase, r.status.parameters.day])).toEqual([
      ['Succeeded', 20240228],
      ['Succeeded', 20240229],
      ['Succeeded', 20240301],
    ]);
    const undeclared = await app.inject({
      method: 'POST',
      url: `${NS}/workflows/iso/backfill`,
      payload: { parameter: 'dateint', from: 20240101, to: 20240102 },
    });
    expect(undeclared.json()).toMatchObject({ status: 422, issues: [{ path: 'parameter' }] });
    const badOther = await app.inject({
      method: 'POST',
      url: `${NS}/workflows/iso/backfill`,
      payload: { parameter: 'day', from: 20240101, to: 20240102, parameters: { label: 'y', extra: 1 } },
    });
    expect(badOther.json()).toMatchObject({ status: 422, issues: [{ path: 'parameters.extra' }] });
  });
  it('refuses a body of another kind, a pin to a version that does not exist, and several YAML documents', async () => {
    const { app, s } = await setup();
    const wrongKind = await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: { kind: 'WorkflowRun', metadata: { name: 'x' }, spec: { workflow: 'y' } },
    });
    expect(wrongKind.json()).toMatchObject({
      status: 400,
      detail: expect.stringContaining('kind: expected Workflow'),
    });
    expect(s.store.get('Workflow', 'team-a', 'x')).toBeUndefined();
    const wf = workflow('pinned', { step: { name: 'a', noop: {} } });
    expect((await app.inject({ method: 'PUT', url: `${NS}/workflows/pinned`, payload: wf })).statusCode).toBe(
      201,
    );
    const badPin = await app.inject({
      method: 'PUT',
      url: `${NS}/workflows/pinned`,
      payload: { ...wf, spec: { ...wf.spec, activeVersion: 9 } },
    });
    expect(badPin.json()).toMatchObject({ status: 422, detail: expect.stringContaining('has no version 9') });
    const kept = s.store.get('Workflow', 'team-a', 'pinned') as { spec: { activeVersion?: number } };
    expect(kept.spec.activeVersion).toBe(undefined);
    // pinning the version this very update creates is fine
    const v2 = { ...wf, spec: { definition: { step: { name: 'b', noop: {} } }, activeVersion: 2 } };
    const ok = await app.inject({ method: 'PUT', url: `${NS}/workflows/pinned`, payload: v2 });
    expect(ok.json()).toMatchObject({ status: { latestVersion: 2, activeVersion: 2 } });
    const two = await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      headers: { 'content-type': 'application/yaml' },
      payload: 'kind: Workflow\nmetadata: {name: a}\n---\nkind: Workflow\nmetadata: {name: b}\n',
    });
    expect(two.json()).toMatchObject({
      status: 400,
      detail: expect.stringContaining('expected one YAML document, got 2'),
    });
  });

  it('says a step that never ran has no logs yet (404), not a bad attempt number', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('waits', {
        step: { name: 'w', inputs: [{ name: 'never' }], shell: { script: 'echo hi' } },
      }),
    });
    const run = (await app.inject({ method: 'POST', url: `${NS}/workflows/waits/runs`, payload: {} })).json();
    for (let i = 0; i < 100; i++) {
      const r = await app.inject({ method: 'GET', url: `${NS}/runs/${run.metadata.name}` });
      if (r.json().status?.steps?.[0]?.phase === 'WaitingForInputs') break;
      await new Promise((res) => setTimeout(res, 30));
    }
    const logs = await app.inject({ method: 'GET', url: `${NS}/runs/${run.metadata.name}/steps/w/logs` });
    expect(logs.json()).toMatchObject({
      status: 404,
      detail: expect.stringContaining('has not run (it is WaitingForInputs)'),
    });
    await app.inject({ method: 'POST', url: `${NS}/runs/${run.metadata.name}/stop` });
  });
  it('restarts a run of a deleted workflow on the version it ran (versions outlive the workflow)', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('gone', { step: { name: 'a', shell: { script: 'exit 1' } } }),
    });
    const first = (
      await app.inject({ method: 'POST', url: `${NS}/workflows/gone/runs`, payload: {} })
    ).json();
    expect((await waitForRun(app, first.metadata.name)).status.phase).toBe('Failed');
    expect((await app.inject({ method: 'DELETE', url: `${NS}/workflows/gone` })).statusCode).toBe(204);
    const again = await app.inject({
      method: 'POST',
      url: `${NS}/runs/${first.metadata.name}/restart`,
      payload: { from: 'beginning' },
    });
    expect(again.statusCode).toBe(201);
    const rerun = await waitForRun(app, again.json().metadata.name);
    // it ran (and failed in its step), rather than failing to start for want of the Workflow
    expect(rerun.status.steps.map((st) => [st.id, st.phase])).toEqual([['a', 'Failed']]);
  });
  it('names the query parameter that is out of range', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('q', { step: { name: 'a', noop: {} } }),
    });
    const run = (await app.inject({ method: 'POST', url: `${NS}/workflows/q/runs`, payload: {} })).json();
    const bad = await app.inject({ method: 'GET', url: `${NS}/runs/${run.metadata.name}?stepsLimit=0` });
    expect(bad.json()).toMatchObject({ status: 400, detail: expect.stringMatching(/^stepsLimit: /) });
  });
  it('keeps the Ready condition time while it does not change (a no-op update is not a transition)', async () => {
    const { app } = await setup();
    const wf = workflow('steady', { step: { name: 'a', noop: {} } });
    const first = (await app.inject({ method: 'PUT', url: `${NS}/workflows/steady`, payload: wf })).json();
    await new Promise((r) => setTimeout(r, 30));
    const again = (await app.inject({ method: 'PUT', url: `${NS}/workflows/steady`, payload: wf })).json();
    expect(again.status.conditions[0]).toEqual(first.status.conditions[0]);
  });
  it('refuses to stop a run that already ended (409) rather than rewriting its spec', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('quick', { step: { name: 'a', noop: {} } }),
    });
    const run = (await app.inject({ method: 'POST', url: `${NS}/workflows/quick/runs`, payload: {} })).json();
    await waitForRun(app, run.metadata.name);
    const stop = await app.inject({ method: 'POST', url: `${NS}/runs/${run.metadata.name}/stop` });
    expect(stop.json()).toMatchObject({
      status: 409,
      code: 'API_CONFLICT',
      detail: expect.stringContaining('Succeeded'),
    });
    const after = (await app.inject({ method: 'GET', url: `${NS}/runs/${run.metadata.name}` })).json();
    expect(after.spec.stop).toBeUndefined();
  });
});
