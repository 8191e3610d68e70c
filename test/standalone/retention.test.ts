// Retention on the standalone stack: a run deleted through the REST API loses its attempt
// directories and logs, and the sweep applies a Workflow's spec.retention to real runs.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { createStandalone } from '../../src/controller/standalone.ts';
import type { WorkflowRun } from '../../src/crds/index.ts';
import { SqliteAsyncStore } from '../../src/store/sqlite-async.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const root = mkdtempSync(join(tmpdir(), 'meson-retention-'));
  // the sweep is driven by the test (interval 0), files go without the 5 s grace
  const s = createStandalone({
    dataDir: join(root, 'data'),
    cwd: root,
    pollMs: 50,
    retention: { intervalMs: 0, fileGraceMs: 0 },
  });
  s.start();
  const app = await buildApp({ store: new SqliteAsyncStore(s.store) });
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => s.stop());
  cleanups.push(() => app.close());
  return { s, app };
}

const NS = '/api/v1/namespaces/team-a';

async function finishedRun(app: Awaited<ReturnType<typeof setup>>['app'], workflow: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: `${NS}/workflows/${workflow}/runs`, payload: {} });
  expect(res.statusCode).toBe(201);
  const name = res.json().metadata.name as string;
  const end = Date.now() + 20_000;
  for (;;) {
    const run = (await app.inject({ method: 'GET', url: `${NS}/runs/${name}` })).json() as WorkflowRun;
    if (run.status?.phase === 'Succeeded') return name;
    if (Date.now() > end) throw new Error(`run ${name} did not succeed: ${JSON.stringify(run.status)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function putWorkflow(
  app: Awaited<ReturnType<typeof setup>>['app'],
  name: string,
  spec: Record<string, unknown>,
) {
  return app.inject({
    method: 'PUT',
    url: `${NS}/workflows/${name}`,
    payload: { apiVersion: 'meson.dev/v1alpha1', kind: 'Workflow', metadata: { name }, spec },
  });
}

describe('retention on the standalone server', () => {
  it('DELETE of a run removes its step instances, attempt directories and logs', async () => {
    const { s, app } = await setup();
    expect(
      (
        await putWorkflow(app, 'echo', {
          definition: { step: { name: 'say', shell: { script: 'echo hi' } } },
        })
      ).statusCode,
    ).toBeLessThan(300);
    const name = await finishedRun(app, 'echo');
    const logs = await app.inject({ method: 'GET', url: `${NS}/runs/${name}/steps/say/logs` });
    expect(logs.body).toBe('hi\n');
    const dir = s.store.runDir('team-a', name);
    expect(existsSync(dir)).toBe(true);
    expect((await app.inject({ method: 'DELETE', url: `${NS}/runs/${name}` })).statusCode).toBe(204);
    await s.retention.settled();
    expect(existsSync(dir)).toBe(false);
    expect(s.store.getStepInstances('team-a', name).items).toEqual([]);
  });

  it("the sweep keeps a workflow's keepLast newest finished runs and deletes the others with their files", async () => {
    const { s, app } = await setup();
    await putWorkflow(app, 'kept', {
      retention: { keepLast: 1 },
      definition: { step: { name: 'say', shell: { script: 'echo hi' } } },
    });
    const first = await finishedRun(app, 'kept');
    const second = await finishedRun(app, 'kept');
    const r = await s.retention.sweep();
    expect(r.deleted.map((d) => d.run)).toEqual([first]);
    await s.retention.settled();
    expect(s.store.get('WorkflowRun', 'team-a', first)).toBeUndefined();
    expect(existsSync(s.store.runDir('team-a', first))).toBe(false);
    expect(existsSync(s.store.runDir('team-a', second))).toBe(true);
  });
});
