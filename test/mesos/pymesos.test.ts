// The master-compatible endpoint against code no one here wrote: a framework built on pymesos
// (PyPI, installed by test/mesos/install-pymesos.sh, which .ci/run calls) subscribes, launches
// tasks on our offers, acknowledges their updates, reconciles and tears down.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMesosMasterServer, MesosMaster } from '../../src/mesos-compat/master.ts';
import { FakeTaskRunner, host, StaticOfferSource } from '../../src/mesos-compat/test-helpers.ts';
import { FRAMEWORK_SCRIPT, PYMESOS_VENV, PYTHON, run } from './framework-process.ts';

const venv = PYMESOS_VENV;
const python = PYTHON;
const script = FRAMEWORK_SCRIPT;

describe('pymesos framework against the master-compatible endpoint', () => {
  const dir = mkdtempSync(join(tmpdir(), 'meson-pymesos-'));
  let master: MesosMaster;
  let runner: FakeTaskRunner;
  let app: ReturnType<typeof createMesosMasterServer>;
  let port: number;

  beforeAll(async () => {
    if (!existsSync(python)) {
      throw new Error(
        `pymesos venv missing at ${venv}: run bash test/mesos/install-pymesos.sh (.ci/run does)`,
      );
    }
    runner = new FakeTaskRunner({ delayMs: 20 });
    master = new MesosMaster({
      offers: new StaticOfferSource([host('node-a', 500), host('node-b', 500)]),
      runner,
      heartbeatIntervalSeconds: 1,
      allocationIntervalMs: 100,
    });
    app = createMesosMasterServer(master);
    await app.listen({ host: '127.0.0.1', port: 0 });
    master.start();
    port = (app.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await app?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('subscribes, launches N tasks, sees them finish, acknowledges, reconciles and tears down', async () => {
    const N = 8;
    const summaryPath = join(dir, 'summary.json');
    const { code, out } = await run(python, [script, `127.0.0.1:${port}`, String(N), summaryPath], 90_000);
    expect(code, out).toBe(0);
    const s = JSON.parse(readFileSync(summaryPath, 'utf8'));

    // What the framework saw.
    expect(s.ok).toBe(true);
    expect(s.launched).toHaveLength(N);
    for (const t of s.launched) expect(s.states[t]).toBe('TASK_FINISHED');
    // 0.5 cpus per host and 0.1 per task: the tasks had to spread over both hosts.
    expect(s.offer_hosts).toEqual(['node-a', 'node-b']);
    const agentUpdates = s.history.filter(
      (h: [string, string, boolean, string | null]) => h[3] !== 'REASON_RECONCILIATION',
    );
    expect(agentUpdates.every((h: [string, string, boolean]) => h[2])).toBe(true); // all carried a uuid
    expect(s.acked).toHaveLength(agentUpdates.length);
    expect(s.reconciled).toEqual([
      [s.launched[0], 'TASK_FINISHED'],
      ['no-such-task', 'TASK_LOST'],
    ]);

    // What the endpoint recorded.
    expect(runner.launched.map((l) => l.task.task_id.value).sort()).toEqual([...s.launched].sort());
    expect(runner.launched.every((l) => l.task.command?.value?.startsWith('echo hello from'))).toBe(true);
    expect(master.record.acknowledged.map((a) => a.uuid)).toEqual(s.acked);
    expect(master.record.acknowledged.every((a) => a.frameworkId === s.framework_id)).toBe(true);
    expect(master.record.declined.map((d) => d.offerId).sort()).toEqual([...s.declined].sort());
    expect(master.record.accepted.flatMap((a) => a.taskIds).sort()).toEqual([...s.launched].sort());
    // driver.stop() without failover sends TEARDOWN.
    expect(master.record.removedFrameworks).toEqual([{ frameworkId: s.framework_id, why: 'TEARDOWN' }]);
  });
});
