// `mesonctl server` as users start it: loads the examples into an empty store (and only into an
// empty one), serves the API, and runs an example to completion.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { api, type ServerProcess, startServer } from './server-process.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples', import.meta.url));
const servers: ServerProcess[] = [];
let root = '';
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('mesonctl server', () => {
  it('loads examples into an empty store and runs one through the API', async () => {
    root = mkdtempSync(join(tmpdir(), 'meson-server-'));
    const dataDir = join(root, 'data');
    const server = await startServer({
      cwd: root,
      dataDir,
      examples: EXAMPLES,
      env: { MESON_LOG_LEVEL: 'info' },
    });
    servers.push(server);
    const list = await api(server.url, 'GET', '/api/v1/namespaces/default/workflows');
    const names: string[] = list.body.items.map((w: { metadata: { name: string } }) => w.metadata.name);
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'));
    expect(names.length).toBeGreaterThanOrEqual(files.length);
    expect(names).toContain('hello-meson');
    const run = await api(server.url, 'POST', '/api/v1/namespaces/default/workflows/hello-meson/runs', {
      parameters: { who: 'server' },
    });
    expect(run.status).toBe(201);
    let phase = '';
    for (let i = 0; i < 400 && !['Succeeded', 'Failed'].includes(phase); i++) {
      await new Promise((r) => setTimeout(r, 50));
      phase = (await api(server.url, 'GET', `/api/v1/namespaces/default/runs/${run.body.metadata.name}`)).body
        .status?.phase;
    }
    expect(phase).toBe('Succeeded');
    const log = await api(
      server.url,
      'GET',
      `/api/v1/namespaces/default/runs/${run.body.metadata.name}/steps/greet/logs`,
    );
    expect(log.body).toMatch(/Hello, server!/);
    // the log is pino JSON lines that say what happened to the run
    const lines = server
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; [k: string]: unknown });
    const name = `default/${run.body.metadata.name}`;
    // one line per request, with what a platform engineer greps for
    expect(lines.find((l) => l.msg === 'request' && l.method === 'POST')).toMatchObject({
      url: '/api/v1/namespaces/default/workflows/hello-meson/runs',
      statusCode: 201,
      ms: expect.any(Number),
    });
    expect(lines.some((l) => l.msg === 'incoming request')).toBe(false);
    expect(lines.find((l) => l.msg === 'run started' && l.run === name)).toMatchObject({
      workflow: 'hello-meson',
      version: 1,
      initiator: 'api',
    });
    for (let i = 0; i < 100 && !lines.some((l) => l.msg === 'run finished' && l.run === name); i++) {
      await new Promise((r) => setTimeout(r, 20));
      lines.push(
        ...server
          .output()
          .split('\n')
          .filter((l) => l.startsWith('{') && l.includes('run finished'))
          .map((l) => JSON.parse(l)),
      );
    }
    expect(lines.find((l) => l.msg === 'run finished' && l.run === name)).toMatchObject({
      workflow: 'hello-meson',
      phase: 'Succeeded',
      duration: expect.stringMatching(/s$/),
    });
  });

  it('refuses a second server on the same data directory, and takes over after a kill -9', async () => {
    root = mkdtempSync(join(tmpdir(), 'meson-server-'));
    const dataDir = join(root, 'data');
    const first = await startServer({ cwd: root, dataDir });
    servers.push(first);
    // two controllers on one store would launch every step twice
    await expect(startServer({ cwd: root, dataDir })).rejects.toThrow(
      /data directory .* is in use by process \d+/,
    );
    await first.kill();
    const second = await startServer({ cwd: root, dataDir });
    servers.push(second);
    expect((await api(second.url, 'GET', '/healthz')).body).toEqual({ ok: true });
  });
  it("keeps the server's secrets out of a step's environment (and so out of its logs served by the API)", async () => {
    root = mkdtempSync(join(tmpdir(), 'meson-server-'));
    const token = 'tok-SECRET-api';
    const server = await startServer({
      cwd: root,
      dataDir: join(root, 'data'),
      env: {
        MESON_API_TOKEN: token,
        AWS_SECRET_ACCESS_KEY: 'aws-SECRET-key',
        SOME_VAR: 'some-SECRET-value',
        SHARED_OK: 'shared-value',
        MESON_STEP_ENV_PASSTHROUGH: 'SHARED_OK',
      },
    });
    servers.push(server);
    const ns = '/api/v1/namespaces/default';
    const workflow = {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name: 'printenv' },
      spec: {
        definition: {
          step: { name: 'p', shell: { script: 'env; cat /proc/$PPID/environ | tr "\\0" "\\n"' } },
        },
      },
    };
    expect((await api(server.url, 'POST', `${ns}/workflows`, workflow, token)).status).toBe(201);
    const run = (await api(server.url, 'POST', `${ns}/workflows/printenv/runs`, {}, token)).body.metadata
      .name;
    let phase = '';
    for (let i = 0; i < 400 && !['Succeeded', 'Failed'].includes(phase); i++) {
      await new Promise((r) => setTimeout(r, 50));
      phase = (await api(server.url, 'GET', `${ns}/runs/${run}`, undefined, token)).body.status?.phase ?? '';
    }
    expect(phase).toBe('Succeeded');
    const logs = (await api(server.url, 'GET', `${ns}/runs/${run}/steps/p/logs`, undefined, token))
      .body as string;
    expect(logs).toContain('SHARED_OK=shared-value');
    expect(logs).toMatch(/^HOME=.*\/attempts\/default\/.*\/work$/m);
    expect(logs).not.toContain('SECRET');
  });
});
