// The standalone server is killed with SIGKILL in the middle of a 20-step run and started
// again: the run completes, and every step's side effect happened exactly once (steps that
// were running are adopted, not re-run; steps that finished while the server was down are
// read from their status files).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { api, type ServerProcess, startServer, until } from './server-process.ts';

const STEPS = 20;
const servers: ServerProcess[] = [];
let root = '';
afterEach(async () => {
  for (const s of servers.splice(0)) await s.kill();
  if (root && !process.env.KEEP) rmSync(root, { recursive: true, force: true });
});

describe('standalone server crash', () => {
  it('completes a run after SIGKILL mid-run with every side effect exactly once', async () => {
    root = mkdtempSync(join(tmpdir(), 'meson-crash-'));
    const dataDir = join(root, 'data');
    const sideEffects = join(root, 'side-effects.txt');
    let server = await startServer({ cwd: root, dataDir });
    servers.push(server);

    const workflow = {
      metadata: { name: 'twenty' },
      spec: {
        definition: {
          sequence: Array.from({ length: STEPS }, (_, i) => ({
            step: { name: `s${i}`, shell: { script: `echo s${i} >> ${sideEffects}; sleep 0.25` } },
          })),
        },
      },
    };
    expect((await api(server.url, 'POST', '/api/v1/namespaces/default/workflows', workflow)).status).toBe(
      201,
    );
    const started = await api(server.url, 'POST', '/api/v1/namespaces/default/workflows/twenty/runs', {});
    expect(started.status).toBe(201);
    const run = started.body.metadata.name as string;

    // kill while a step in the middle is running
    await until('step s6 to run', async () => {
      const r = await api(server.url, 'GET', `/api/v1/namespaces/default/runs/${run}/steps?phase=Running`);
      return r.body.items.some((s: { id: string }) => Number(s.id.slice(1)) >= 6) ? true : undefined;
    });
    await server.kill();
    // let the running step finish while nobody watches it
    await new Promise((r) => setTimeout(r, 400));

    server = await startServer({ cwd: root, dataDir });
    servers.push(server);
    const final = await until('the run to finish', async () => {
      const r = await api(server.url, 'GET', `/api/v1/namespaces/default/runs/${run}`);
      const phase = r.body.status?.phase;
      return ['Succeeded', 'Failed', 'Stopped'].includes(phase) ? r.body : undefined;
    });
    expect(final.status.phase, JSON.stringify(final.status)).toBe('Succeeded');
    expect(final.status.steps).toHaveLength(STEPS);
    const lines = readFileSync(sideEffects, 'utf8').trim().split('\n');
    const launches = readdirSync(join(dataDir, 'attempts', 'default', run), { recursive: true })
      .map(String)
      .filter((p) => p.split('/').length === 2)
      .sort();
    expect(lines, `launch dirs: ${launches.join(' ')}\nserver output:\n${server.output()}`).toEqual(
      Array.from({ length: STEPS }, (_, i) => `s${i}`),
    );
  });

  it('completes a parallel foreach after SIGKILL with several steps in flight, each side effect once', async () => {
    root = mkdtempSync(join(tmpdir(), 'meson-crash-'));
    const dataDir = join(root, 'data');
    const sideEffects = join(root, 'side-effects.txt');
    let server = await startServer({ cwd: root, dataDir });
    servers.push(server);
    const workflow = {
      metadata: { name: 'fan' },
      spec: {
        definition: {
          foreach: {
            items: 'range(12)',
            as: 'i',
            parallelism: 4,
            do: { step: { name: 'w', shell: { script: `echo w\${i} >> ${sideEffects}; sleep 0.4` } } },
          },
        },
      },
    };
    expect((await api(server.url, 'POST', '/api/v1/namespaces/default/workflows', workflow)).status).toBe(
      201,
    );
    const run = (await api(server.url, 'POST', '/api/v1/namespaces/default/workflows/fan/runs', {})).body
      .metadata.name as string;
    await until('several iterations in flight', async () => {
      const r = await api(server.url, 'GET', `/api/v1/namespaces/default/runs/${run}/steps`);
      const items = r.body.items as { phase: string }[];
      const done = items.filter((s) => s.phase === 'Succeeded').length;
      const running = items.filter((s) => s.phase === 'Running').length;
      return done >= 2 && running >= 2 ? true : undefined;
    });
    await server.kill();
    server = await startServer({ cwd: root, dataDir });
    servers.push(server);
    const final = await until('the run to finish', async () => {
      const r = await api(server.url, 'GET', `/api/v1/namespaces/default/runs/${run}`);
      return ['Succeeded', 'Failed', 'Stopped'].includes(r.body.status?.phase) ? r.body : undefined;
    });
    expect(final.status.phase, JSON.stringify(final.status)).toBe('Succeeded');
    const lines = readFileSync(sideEffects, 'utf8').trim().split('\n').sort();
    expect(lines).toEqual(Array.from({ length: 12 }, (_, i) => `w${i}`).sort());
  });
});
