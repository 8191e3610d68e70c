// One run must not take the server down. The reported repros, through the real entry point:
// a nested 100,000 x 100,000 foreach exhausted the heap in ~5 s, and the unfinished run, left
// Running in the store, crashed the server again at every start. Now the run fails on its
// limit, the server keeps answering, and a restart with such a run stored comes up.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { WorkflowRun } from '../../src/crds/index.ts';
import { SqliteStore } from '../../src/store/sqlite.ts';
import { api, type ServerProcess, startServer } from './server-process.ts';

const servers: ServerProcess[] = [];
let root = '';
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
  if (root && !process.env.KEEP) rmSync(root, { recursive: true, force: true });
});

async function finished(url: string, run: string, ms = 90_000): Promise<WorkflowRun> {
  const end = Date.now() + ms;
  for (;;) {
    const r = await api(url, 'GET', `/api/v1/namespaces/default/runs/${run}`);
    if (['Succeeded', 'Failed', 'Stopped'].includes(r.body?.status?.phase)) return r.body;
    if (Date.now() > end) throw new Error(`run ${run} did not finish: ${JSON.stringify(r.body?.status)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

const nested = (name: string, inner: object) => ({
  metadata: { name },
  spec: {
    definition: {
      foreach: {
        items: 'range(100000)',
        as: 'i',
        do: { foreach: { items: 'range(100000)', as: 'j', do: inner } },
      },
    },
  },
});

describe('standalone server: run limits and quarantine', () => {
  it('fails the nested-foreach run on its limit, keeps serving, and restarts with it stored unfinished', async () => {
    root = mkdtempSync(join(tmpdir(), 'meson-limits-'));
    const dataDir = join(root, 'data');
    let server = await startServer({ cwd: root, dataDir });
    servers.push(server);
    const put = (wf: object) => api(server.url, 'POST', '/api/v1/namespaces/default/workflows', wf);
    expect((await put(nested('nested', { step: { name: 'n', noop: {} } }))).status).toBe(201);
    expect(
      (await put(nested('nested-shell', { step: { name: 's', shell: { script: 'true' } } }))).status,
    ).toBe(201);
    expect(
      (
        await put({
          metadata: { name: 'ok' },
          spec: { definition: { step: { name: 'a', shell: { script: 'true' } } } },
        })
      ).status,
    ).toBe(201);
    // A loop bounded by 2^53 is refused before it can run.
    const giant = await put({
      metadata: { name: 'giant' },
      spec: {
        definition: {
          loop: { while: 'true', maxIterations: 9007199254740991, do: { step: { name: 'l', noop: {} } } },
        },
      },
    });
    expect(giant.status).toBe(422);
    expect(JSON.stringify(giant.body)).toContain('maxIterations');

    const start = async (wf: string) =>
      (await api(server.url, 'POST', `/api/v1/namespaces/default/workflows/${wf}/runs`, {})).body.metadata
        .name as string;
    const run = await start('nested');
    const done = await finished(server.url, run);
    expect(done.status?.phase).toBe('Failed');
    expect(done.status?.message).toMatch(/^RUN_LIMIT_STEP_INSTANCES: .*--max-step-instances/);
    expect((await api(server.url, 'GET', '/healthz')).status).toBe(200);
    expect((await finished(server.url, await start('ok'))).status?.phase).toBe('Succeeded');
    await server.kill();

    // As the server of the report left it when its heap ran out: Running, no instance yet.
    const store = new SqliteStore({ dir: dataDir });
    const left = store.create<WorkflowRun>('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'left-running', namespace: 'default' },
      spec: { workflow: 'nested-shell' },
    } as WorkflowRun);
    store.updateStatus('WorkflowRun', {
      ...left,
      status: {
        phase: 'Running',
        version: 1,
        startTime: new Date().toISOString(),
        engineState: { runTs: Date.now() },
      },
    });
    store.close();

    // The limit comes from the environment this time.
    server = await startServer({ cwd: root, dataDir, env: { MESON_MAX_STEP_INSTANCES: '5000' } });
    servers.push(server);
    const recovered = await finished(server.url, 'left-running');
    expect(recovered.status?.phase).toBe('Failed');
    expect(recovered.status?.message).toMatch(/^RUN_LIMIT_(STEP_INSTANCES|ITERATIONS): /);
    expect((await api(server.url, 'GET', '/healthz')).status).toBe(200);
    expect((await finished(server.url, await start('ok'))).status?.phase).toBe('Succeeded');
    // A run of the shell variant started now fails on the configured limit, its attempts killed.
    const shell = await finished(server.url, await start('nested-shell'));
    expect(shell.status?.message).toMatch(/^RUN_LIMIT_STEP_INSTANCES: .*\(limit 5000;/);
    expect(server.child.exitCode).toBeNull();
  }, 300_000);
});
