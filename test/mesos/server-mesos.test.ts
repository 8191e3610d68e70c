// `mesonctl server --mesos-master URL`, the real process: our master-compatible endpoint stands in
// for a Mesos master, its LocalTaskRunner really runs each task's command (the executor program).
// Workflows go in through the REST API. The server has no local capacity, so every step that
// needs resources runs on Mesos.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { host } from '../../src/mesos-compat/test-helpers.ts';
import { api, type ServerProcess, startServer, until } from '../standalone/server-process.ts';
import { startEndpoint } from './endpoint.ts';

const POD_EXECUTOR = fileURLToPath(new URL('../../executors/pod.ts', import.meta.url));
const GiB = 1024 ** 3;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup() {
  const root = mkdtempSync(join(tmpdir(), 'meson-server-mesos-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const { master, url: masterUrl } = await startEndpoint(root, cleanups, {
    hosts: [host('agent-1', 4000, 8 * GiB, { rack: 'r1' })],
  });
  const dataDir = join(root, 'data');
  const server: ServerProcess = await startServer({
    cwd: root,
    dataDir,
    env: { MESON_LOG_LEVEL: 'info', MESON_MESOS_OPTIONS: 'declineAfterMs=200' },
    args: [
      '--mesos-master',
      masterUrl,
      '--local-capacity',
      'off',
      '--mesos-executor',
      JSON.stringify([process.execPath, POD_EXECUTOR]),
      '--mesos-framework-name',
      'meson-test',
    ],
  });
  cleanups.push(() => server.kill());
  const ns = '/api/v1/namespaces/default';
  const run = async (workflow: object): Promise<string> => {
    const name = (workflow as { metadata: { name: string } }).metadata.name;
    const put = await api(server.url, 'POST', `${ns}/workflows`, workflow);
    expect(put.status, JSON.stringify(put.body)).toBe(201);
    const started = await api(server.url, 'POST', `${ns}/workflows/${name}/runs`, {});
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    return started.body.metadata.name as string;
  };
  const finished = (name: string) =>
    until(`run ${name} to finish`, async () => {
      const r = await api(server.url, 'GET', `${ns}/runs/${name}`);
      return ['Succeeded', 'Failed', 'Stopped'].includes(r.body.status?.phase) ? r.body : undefined;
    });
  type StepView = { id: string; phase: string; outputs?: object; placement?: object; message?: string };
  const steps = async (name: string): Promise<Record<string, StepView>> => {
    const items = (await api(server.url, 'GET', `${ns}/runs/${name}/steps`)).body.items as StepView[];
    return Object.fromEntries(items.map((s) => [s.id, s]));
  };
  return { root, dataDir, master, server, ns, run, finished, steps };
}

describe('mesonctl server --mesos-master', () => {
  it('runs a workflow submitted through the REST API as Mesos tasks, and suppresses offers when idle', async () => {
    const { master, server, dataDir, run, finished, steps } = await setup();
    // subscribed as the named framework, its id kept in the data directory for a restart
    const fw = await until('the subscription', () => master.frameworkIds()[0]);
    await until('the framework id saved', () => {
      try {
        return readFileSync(join(dataDir, 'mesos-framework-id'), 'utf8').trim() === fw ? true : undefined;
      } catch {
        return undefined;
      }
    });
    // nothing queued: offers are suppressed
    await until('a SUPPRESS', () => (master.record.revives.at(-1)?.call === 'SUPPRESS' ? true : undefined));
    const before = master.record.revives.length;

    const name = await run({
      metadata: { name: 'wf' },
      spec: {
        definition: {
          sequence: [
            { step: { name: 'a', shell: { script: 'echo "n=3" >> "$MESON_OUTPUTS"' } } },
            {
              step: {
                name: 'b',
                shell: { script: 'echo "m=${steps.a.outputs.n}4" >> "$MESON_OUTPUTS"' },
                constraints: { attributes: { 'meson.dev/source': 'mesos', rack: 'r1' } },
              },
            },
            { step: { name: 'z', noop: {} } },
          ],
        },
      },
    });
    const done = await finished(name);
    const st = await steps(name);
    expect(done.status.phase, JSON.stringify([done.status, st, server.output().slice(-3000)])).toBe(
      'Succeeded',
    );
    expect(st.a?.outputs).toEqual({ n: 3 });
    expect(st.b?.outputs).toEqual({ m: 34 });
    expect(st.a?.placement).toEqual({ source: 'mesos', node: 'mesos/agent-1' });
    expect(st.b?.placement).toEqual({ source: 'mesos', node: 'mesos/agent-1' });
    expect(master.record.accepted.flatMap((x) => x.taskIds)).toHaveLength(2);
    // work arrived: REVIVE; the queue emptied again: SUPPRESS
    await until('a SUPPRESS after the run', () =>
      master.record.revives.at(-1)?.call === 'SUPPRESS' ? true : undefined,
    );
    const calls = master.record.revives.slice(before).map((r) => r.call);
    expect(calls[0]).toBe('REVIVE');
    expect(calls).toContain('SUPPRESS');
    expect(master.record.revives.every((r) => r.frameworkId === fw)).toBe(true);
    // none was sent before the subscription, to fail
    expect(server.output()).not.toMatch(/mesos (SUPPRESS|REVIVE) failed/);
  });

  it('keeps a step whose constraint no offer meets queued, logging which one, until it is stopped', async () => {
    const { master, server, ns, run, finished, steps } = await setup();
    await until('the subscription', () => master.frameworkIds()[0]);
    const name = await run({
      metadata: { name: 'nowhere' },
      spec: {
        definition: {
          step: { name: 'a', shell: { script: 'true' }, constraints: { attributes: { rack: 'r9' } } },
        },
      },
    });
    const line = await until('the reason in the log', () =>
      server
        .output()
        .split('\n')
        .find((l) => l.includes('step queued: no offer can take it')),
    );
    const logged = JSON.parse(line);
    expect(logged).toMatchObject({ run: `default/${name}`, step: 'a' });
    expect(logged.reason).toMatch(/attribute rack in \(r9\): 2 of 2 hosts did not match/);
    expect((await steps(name)).a?.phase).toBe('Queued');
    expect(master.record.accepted).toEqual([]);
    // it waits: offers are not suppressed while it does
    expect(master.record.revives.at(-1)?.call).not.toBe('SUPPRESS');
    expect((await api(server.url, 'POST', `${ns}/runs/${name}/stop`, {})).status).toBe(202);
    expect((await finished(name)).status.phase).toBe('Stopped');
    await until('a SUPPRESS once nothing waits', () =>
      master.record.revives.at(-1)?.call === 'SUPPRESS' ? true : undefined,
    );
  });
});
