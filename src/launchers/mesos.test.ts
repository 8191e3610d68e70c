import { describe, expect, it } from 'vitest';
import { TASK_STATES, type TaskStateName, type TaskStatus } from '../mesos-compat/schemas.ts';
import { MesosOfferPool, type MesosSchedulerClient } from '../offer-adapter/mesos-pool.ts';
import { MesosSourceError } from '../offer-adapter/mesos-source.ts';
import type { Offer } from '../offer-adapter/types.ts';
import { MesosLauncher, mesosTaskId, taskInfoFor, type UpdateContext, updateFor } from './mesos.ts';
import type { AttemptUpdate, LaunchRecord, LaunchRequest } from './types.ts';

const key = { namespace: 'ns', run: 'r1', instance: 'a', attempt: 1 };
const record: LaunchRecord = { launchId: 'L1', launchedAt: 1000 };
const ctx = (extra: Partial<UpdateContext> = {}): UpdateContext => ({
  key,
  record,
  queuedAt: 500,
  reportedRunning: false,
  now: 5000,
  ...extra,
});
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const status = (state: TaskStateName, extra: Partial<TaskStatus> = {}): TaskStatus => ({
  task_id: { value: mesosTaskId('L1') },
  state,
  ...extra,
});
const fromExecutor = { source: 'SOURCE_EXECUTOR' as const, uuid: b64('u1') };

describe('updateFor: every TaskState maps to a step event', () => {
  const expected: Record<TaskStateName, string> = {
    TASK_STAGING: 'none',
    TASK_STARTING: 'running',
    TASK_RUNNING: 'running',
    TASK_KILLING: 'none',
    TASK_UNREACHABLE: 'none',
    TASK_FINISHED: 'Succeeded',
    TASK_FAILED: 'Failed',
    TASK_KILLED: 'Failed',
    TASK_ERROR: 'Failed',
    TASK_LOST: 'Failed',
    TASK_DROPPED: 'Failed',
    TASK_GONE: 'Failed',
    TASK_GONE_BY_OPERATOR: 'Failed',
    TASK_UNKNOWN: 'Failed',
  };
  it('covers every state of the protocol', () => {
    expect(Object.keys(expected).sort()).toEqual(Object.keys(TASK_STATES).sort());
  });
  for (const [state, want] of Object.entries(expected) as [TaskStateName, string][]) {
    it(`${state} -> ${want}`, () => {
      const u = updateFor(status(state, { message: 'm', reason: 'REASON_COMMAND_EXECUTOR_FAILED' }), ctx());
      if (want === 'none') expect(u).toBeUndefined();
      else if (want === 'running') {
        expect(u).toMatchObject({ type: 'running', key, status: { phase: 'Running' } });
        expect(u?.type === 'running' && u.status.milestones).toEqual({
          queued: 500,
          launched: 1000,
          running: 5000,
        });
      } else {
        expect(u).toMatchObject({ type: 'finished', key, status: { phase: want, launchId: 'L1' } });
        if (want === 'Failed' && u?.type === 'finished')
          expect(u.status.message).toBe(`${state} REASON_COMMAND_EXECUTOR_FAILED: m`);
      }
    });
  }

  it('reports running once, with the status timestamp as the milestone', () => {
    const u = updateFor(status('TASK_RUNNING', { timestamp: 12.5 }), ctx());
    expect(u?.type === 'running' && u.status.milestones.running).toBe(12_500);
    expect(updateFor(status('TASK_RUNNING'), ctx({ reportedRunning: true }))).toBeUndefined();
  });

  it('places a task again when it never reached an agent, and fails it when it had run', () => {
    for (const reason of ['REASON_INVALID_OFFERS', 'REASON_AGENT_REMOVED']) {
      for (const state of ['TASK_LOST', 'TASK_DROPPED'] as const) {
        const u = updateFor(status(state, { reason }), ctx());
        expect(u).toMatchObject({ type: 'lost', key });
      }
    }
    const after = updateFor(
      status('TASK_LOST', { reason: 'REASON_INVALID_OFFERS' }),
      ctx({ reportedRunning: true }),
    );
    expect(after).toMatchObject({ type: 'finished', status: { phase: 'Failed' } });
  });

  it('takes outputs and links from the executor envelope in data', () => {
    const env = { outputs: { n: 3, s: 'x' }, links: [{ name: 'ui', url: 'https://x' }] };
    const u = updateFor(status('TASK_FINISHED', { ...fromExecutor, data: b64(JSON.stringify(env)) }), ctx());
    expect(u).toMatchObject({ type: 'finished', status: { phase: 'Succeeded', exitCode: 0, ...env } });
  });

  it('ignores data that did not come from the executor in an acknowledged update', () => {
    const data = b64(JSON.stringify({ outputs: { forged: true } }));
    for (const extra of [
      { source: 'SOURCE_MASTER' as const, uuid: b64('u') },
      { source: 'SOURCE_EXECUTOR' as const },
      {},
    ]) {
      const u = updateFor(status('TASK_FINISHED', { ...extra, data }), ctx());
      expect(u).toMatchObject({ type: 'finished', status: { phase: 'Succeeded' } });
      expect(u?.type === 'finished' && u.status.outputs).toBeUndefined();
    }
  });

  it('fails the step, saying why, for every form of a bad envelope', () => {
    const bad: [string, string][] = [
      ['oversized', b64(JSON.stringify({ outputs: { v: 'x'.repeat(300) } }))],
      ['not UTF-8', b64(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))],
      ['not JSON', b64('n=3')],
      ['an array', b64('[1,2]')],
      ['outputs a list', b64('{"outputs":[1]}')],
      ['a __proto__ key', b64('{"outputs":{"__proto__":{"polluted":1}}}')],
      ['a constructor key', b64('{"outputs":{"constructor":1}}')],
      ['a bad link', b64('{"links":[{"name":1}]}')],
      ['a message not text', b64('{"message":{"a":1}}')],
    ];
    for (const [what, data] of bad) {
      const u = updateFor(status('TASK_FINISHED', { ...fromExecutor, data }), ctx({ maxResultBytes: 256 }));
      expect(u, what).toMatchObject({ type: 'finished', status: { phase: 'Failed' } });
      expect(u?.type === 'finished' && u.status.message, what).toMatch(
        /^MESOS_RESULT_INVALID: the task finished but /,
      );
      expect(u?.type === 'finished' && u.status.outputs, what).toBeUndefined();
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });

  it("carries the step's own message on failure, bounded", () => {
    const data = b64(JSON.stringify({ message: 'exit code 4' }));
    const u = updateFor(
      status('TASK_FAILED', {
        ...fromExecutor,
        data,
        reason: 'REASON_COMMAND_EXECUTOR_FAILED',
        message: 'Command exited with status 4',
      }),
      ctx(),
    );
    expect(u?.type === 'finished' && u.status.message).toBe(
      'TASK_FAILED REASON_COMMAND_EXECUTOR_FAILED: exit code 4',
    );
    const long = updateFor(status('TASK_ERROR', { message: 'é'.repeat(10_000) }), ctx({ messageBytes: 100 }));
    const m = long?.type === 'finished' ? (long.status.message ?? '') : '';
    expect(Buffer.byteLength(m)).toBeLessThanOrEqual(100);
    expect(m).toMatch(/truncated\)$/);
  });
});

function request(extra: Partial<LaunchRequest['step']> = {}): LaunchRequest {
  return {
    ...key,
    workflow: 'wf',
    queuedAt: 500,
    step: {
      name: 'a',
      type: 'shell',
      shell: { script: 'echo "$MESON_V_1"; rm -rf /', env: { MESON_V_1: '$(reboot)' } },
      parameters: { p: 'v', big: 'x'.repeat(10) },
      ...extra,
    },
  };
}

describe('taskInfoFor', () => {
  const grant = { cpuMillis: 100, memoryBytes: 64 * 2 ** 20, diskBytes: 0, gpus: 0 };
  it('runs the executor without a shell; the script and values travel only in MESON_TASK', () => {
    const t = taskInfoFor(request(), record, {
      agentId: 'ag1',
      resources: grant,
      executorCommand: ['/usr/bin/node', '/x/pod.ts'],
    });
    expect(t.command).toMatchObject({
      shell: false,
      value: '/usr/bin/node',
      arguments: ['/usr/bin/node', '/x/pod.ts'],
    });
    expect(JSON.stringify([t.command?.value, t.command?.arguments, t.name])).not.toMatch(/rm -rf|reboot/);
    const vars = Object.fromEntries((t.command?.environment?.variables ?? []).map((v) => [v.name, v.value]));
    const task = JSON.parse(vars.MESON_TASK!);
    expect(task.step.shell.script).toBe('echo "$MESON_V_1"; rm -rf /');
    expect(task.step.parameters).toBeUndefined();
    expect(vars.MESON_PARAM_p).toBe('v');
    expect(vars.MESON_RESULT_MAX_BYTES).toBe(String(64 * 1024));
    expect(t.resources).toEqual([
      { name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } },
      { name: 'mem', type: 'SCALAR', scalar: { value: 64 } },
    ]);
    expect(t).toMatchObject({ task_id: { value: 'meson-L1' }, agent_id: { value: 'ag1' } });
  });

  it('refuses a task too large for an environment value, and one that uses no resources', () => {
    const big = request({ shell: { script: `echo ${'x'.repeat(70_000)}` } });
    expect(() => taskInfoFor(big, record, { agentId: 'a', resources: grant })).toThrow(
      expect.objectContaining({ code: 'MESOS_TASK_TOO_LARGE' }),
    );
    // a configured maximum above what a TaskInfo may carry is capped
    expect(() => taskInfoFor(big, record, { agentId: 'a', resources: grant, maxTaskBytes: 10 ** 9 })).toThrow(
      /over the 65536 bytes/,
    );
    expect(() =>
      taskInfoFor(request(), record, {
        agentId: 'a',
        resources: { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 },
      }),
    ).toThrow(expect.objectContaining({ code: 'MESOS_NO_RESOURCES' }));
  });
});

class FakeClient implements MesosSchedulerClient {
  list: Offer[] = [];
  accepts: { offerIds: string[]; taskIds: string[]; refuse?: number }[] = [];
  kills: { taskId: string; agentId?: string }[] = [];
  reconciles: { taskId: string; agentId?: string }[][] = [];
  /** How the next ACCEPTs fail: the error they throw after reaching the fake master. */
  failAccept: Error | false = false;
  offers() {
    return this.list;
  }
  async accept(offerIds: string[], tasks: { task_id: { value: string } }[], refuse?: number) {
    this.list = this.list.filter((o) => !offerIds.includes(o.id));
    this.accepts.push({
      offerIds,
      taskIds: tasks.map((t) => t.task_id.value),
      ...(refuse !== undefined ? { refuse } : {}),
    });
    if (this.failAccept) throw this.failAccept;
  }
  async decline() {}
  async revive() {}
  async suppress() {}
  async kill(taskId: string, agentId?: string) {
    this.kills.push({ taskId, ...(agentId ? { agentId } : {}) });
  }
  async reconcile(tasks: { taskId: string; agentId?: string }[]) {
    this.reconciles.push(tasks);
  }
}

const refusedAccept = () =>
  new MesosSourceError('MESOS_CALL_FAILED', 'ACCEPT answered 400: bad', { status: 400 });

function offer(id: string, hostname: string): Offer {
  return {
    id,
    source: 'mesos',
    hostname,
    agentId: `agent-${hostname}`,
    resources: { cpuMillis: 2000, memoryBytes: 2 ** 30, diskBytes: 0, gpus: 0 },
    attributes: {},
  };
}

function launcherHarness(reliableGraceMs?: number) {
  const client = new FakeClient();
  client.list = [offer('o1', 'h1'), offer('o2', 'h1'), offer('o3', 'h2')];
  const pool = new MesosOfferPool({ client, tickMs: 0 });
  const updates: AttemptUpdate[] = [];
  let n = 0;
  const launcher = new MesosLauncher({
    pool,
    onUpdate: (u) => updates.push(u),
    newLaunchId: () => `L${++n}`,
    now: () => 9,
    ...(reliableGraceMs !== undefined ? { reliableGraceMs } : {}),
  });
  const grant = { cpuMillis: 100, memoryBytes: 2 ** 20, diskBytes: 0, gpus: 0 };
  const place = (instance: string, host: string, step?: Partial<LaunchRequest['step']>) => {
    const req = { ...request(step), instance };
    pool.hold(`ns/r1/${instance}`, grant);
    const rec = launcher.prepare(req);
    rec.node = host;
    launcher.launch(req, rec);
    return { req, rec };
  };
  pool.offers(0);
  return { client, pool, launcher, updates, place };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('MesosLauncher', () => {
  it('launches the placements of one host in ONE accept naming all its offers', async () => {
    const h = launcherHarness();
    h.place('a', 'h1');
    h.place('b', 'h1');
    h.place('c', 'h2');
    // spent at once: a following pass cannot place on them again
    expect(h.pool.offers(1)).toEqual([]);
    await tick();
    expect(h.client.accepts).toEqual([
      { offerIds: ['o1', 'o2'], taskIds: ['meson-L1', 'meson-L2'], refuse: 0 },
      { offerIds: ['o3'], taskIds: ['meson-L3'], refuse: 0 },
    ]);
    expect(h.launcher.knownTasks()).toEqual([
      { taskId: 'meson-L1', agentId: 'agent-h1' },
      { taskId: 'meson-L2', agentId: 'agent-h1' },
      { taskId: 'meson-L3', agentId: 'agent-h2' },
    ]);
    h.launcher.onStatus(status('TASK_RUNNING', { task_id: { value: 'meson-L1' } }));
    h.launcher.onStatus(status('TASK_RUNNING', { task_id: { value: 'meson-L1' } }));
    h.launcher.onStatus(status('TASK_FINISHED', { ...fromExecutor, task_id: { value: 'meson-L1' } }));
    h.launcher.onStatus(status('TASK_FAILED', { ...fromExecutor, task_id: { value: 'meson-L1' } })); // after the end: ignored
    h.launcher.onStatus(status('TASK_FINISHED', { task_id: { value: 'meson-unknown' } }));
    expect(h.updates.map((u) => [u.type, u.key.instance])).toEqual([
      ['running', 'a'],
      ['finished', 'a'],
    ]);
  });

  it('places a task again when its offers were rescinded before the launch or the master refused it', async () => {
    const h = launcherHarness();
    h.client.list = h.client.list.filter((o) => o.hostname !== 'h1');
    h.place('a', 'h1');
    await tick();
    expect(h.updates).toMatchObject([
      { type: 'lost', key: { instance: 'a' }, message: expect.stringMatching(/offers of h1 were gone/) },
    ]);
    h.client.failAccept = refusedAccept();
    h.place('b', 'h2');
    await tick();
    await tick();
    expect(h.updates[1]).toMatchObject({
      type: 'lost',
      key: { instance: 'b' },
      message: expect.stringMatching(/refused the launch/),
    });
  });

  it('kills a task not yet accepted without launching it, and a launched one with KILL', async () => {
    const h = launcherHarness();
    const a = h.place('a', 'h1');
    const b = h.place('b', 'h1');
    h.launcher.kill(a.req, a.rec);
    await tick();
    expect(h.client.accepts[0]?.taskIds).toEqual(['meson-L2']);
    expect(h.updates).toMatchObject([
      { type: 'finished', status: { phase: 'Failed', message: 'killed before it was launched' } },
    ]);
    h.launcher.kill(b.req, b.rec);
    expect(h.client.kills).toEqual([{ taskId: 'meson-L2', agentId: 'agent-h1' }]);
  });

  it('fails a step that cannot be a task, and runs noops in-process without an offer', async () => {
    const h = launcherHarness();
    h.place('big', 'h1', { shell: { script: 'x'.repeat(70_000) } });
    h.place('n', 'h2', { type: 'noop', shell: undefined });
    await tick();
    expect(h.updates.find((u) => u.key.instance === 'big')).toMatchObject({
      type: 'finished',
      status: { phase: 'Failed', message: expect.stringMatching(/^MESOS_TASK_TOO_LARGE: /) },
    });
    expect(h.updates.find((u) => u.key.instance === 'n')).toMatchObject({
      type: 'finished',
      status: { phase: 'Succeeded' },
    });
    expect(h.client.accepts.flatMap((a) => a.taskIds)).toEqual([]);
  });

  it('adopts a task after a restart: it is reconciled and its updates are taken', () => {
    const h = launcherHarness();
    h.launcher.adopt(key, { launchId: 'old', launchedAt: 1, node: 'h1' }, request());
    expect(h.launcher.knownTasks()).toEqual([{ taskId: 'meson-old' }]);
    h.launcher.onStatus(
      status('TASK_KILLED', { ...fromExecutor, task_id: { value: 'meson-old' }, agent_id: { value: 'ag' } }),
    );
    expect(h.updates).toMatchObject([
      { type: 'finished', status: { phase: 'Failed', message: 'TASK_KILLED' } },
    ]);
  });

  it("waits for the agent's update when the master alone says the task ended, and never succeeds without the result", async () => {
    const h = launcherHarness(30);
    const id = { value: 'meson-old' };
    h.launcher.adopt(key, { launchId: 'old', launchedAt: 1, node: 'h1' }, request());
    const master = { source: 'SOURCE_MASTER' as const, reason: 'REASON_RECONCILIATION' };
    h.launcher.onStatus(status('TASK_FINISHED', { ...master, task_id: id }));
    expect(h.updates).toEqual([]);
    const data = b64(JSON.stringify({ outputs: { n: 1 } }));
    h.launcher.onStatus(status('TASK_FINISHED', { ...fromExecutor, data, task_id: id }));
    expect(h.updates).toMatchObject([
      { type: 'finished', status: { phase: 'Succeeded', outputs: { n: 1 } } },
    ]);
    await new Promise((r) => setTimeout(r, 60));
    expect(h.updates).toHaveLength(1);
    // the agent's update never comes
    h.launcher.adopt({ ...key, instance: 'b' }, { launchId: 'b', launchedAt: 1, node: 'h1' }, request());
    h.launcher.onStatus(status('TASK_FINISHED', { ...master, task_id: { value: 'meson-b' } }));
    h.launcher.adopt({ ...key, instance: 'c' }, { launchId: 'c', launchedAt: 1, node: 'h1' }, request());
    h.launcher.onStatus(status('TASK_FAILED', { ...master, message: 'm', task_id: { value: 'meson-c' } }));
    // what only the master can say is taken at once
    h.launcher.adopt({ ...key, instance: 'd' }, { launchId: 'd', launchedAt: 1, node: 'h1' }, request());
    h.launcher.onStatus(status('TASK_GONE', { ...master, task_id: { value: 'meson-d' } }));
    expect(h.updates[1]).toMatchObject({
      key: { instance: 'd' },
      status: { phase: 'Failed', message: 'TASK_GONE REASON_RECONCILIATION' },
    });
    await new Promise((r) => setTimeout(r, 60));
    expect(
      h.updates.find((u) => u.key.instance === 'b'),
      JSON.stringify(h.updates),
    ).toMatchObject({
      status: { phase: 'Failed', message: expect.stringMatching(/^MESOS_RESULT_LOST: /) },
    });
    expect(h.updates.find((u) => u.key.instance === 'c')).toMatchObject({
      status: { phase: 'Failed', message: 'TASK_FAILED REASON_RECONCILIATION: m' },
    });
  });

  it('asks the master, rather than placing again, when an ACCEPT got no answer', async () => {
    // the call may have reached the master: a second task would run the step twice
    const unanswered: [string, Error][] = [
      ['a reset connection', new TypeError('fetch failed')],
      [
        'a timeout',
        Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }),
      ],
      [
        'a proxy 502',
        new MesosSourceError('MESOS_CALL_FAILED', 'ACCEPT answered 502: bad gateway', { status: 502 }),
      ],
      ['a 503', new MesosSourceError('MESOS_CALL_FAILED', 'ACCEPT answered 503: x', { status: 503 })],
    ];
    for (const [what, err] of unanswered) {
      const h = launcherHarness();
      h.client.failAccept = err;
      h.place('a', 'h1');
      h.place('b', 'h1');
      await tick();
      await tick();
      expect(h.updates, what).toEqual([]);
      expect(h.client.reconciles, what).toEqual([
        [
          { taskId: 'meson-L1', agentId: 'agent-h1' },
          { taskId: 'meson-L2', agentId: 'agent-h1' },
        ],
      ]);
      // the master knows a: it goes on, its result taken as usual
      h.launcher.onStatus(
        status('TASK_RUNNING', {
          source: 'SOURCE_MASTER',
          reason: 'REASON_RECONCILIATION',
          task_id: { value: 'meson-L1' },
        }),
      );
      h.launcher.onStatus(status('TASK_FINISHED', { ...fromExecutor, task_id: { value: 'meson-L1' } }));
      // it does not know b: fenced with a KILL, then placed again
      h.launcher.onStatus(
        status('TASK_LOST', {
          source: 'SOURCE_MASTER',
          reason: 'REASON_RECONCILIATION',
          task_id: { value: 'meson-L2' },
        }),
      );
      expect(
        h.updates.map((u) => [u.type, u.key.instance, u.type === 'finished' ? u.status.phase : '']),
        what,
      ).toEqual([
        ['running', 'a', ''],
        ['finished', 'a', 'Succeeded'],
        ['lost', 'b', ''],
      ]);
      expect(h.client.kills, what).toEqual([{ taskId: 'meson-L2', agentId: 'agent-h1' }]);
    }
    // refused for sure (a 4xx answer, or never sent): placed again at once
    for (const err of [
      refusedAccept(),
      new MesosSourceError('MESOS_CALL_FAILED', 'ACCEPT answered 403: x', { status: 403 }),
      new MesosSourceError('MESOS_NOT_SUBSCRIBED', 'not subscribed to a Mesos master'),
    ]) {
      const h = launcherHarness();
      h.client.failAccept = err;
      h.place('a', 'h1');
      await tick();
      await tick();
      expect(h.updates, err.message).toMatchObject([
        { type: 'lost', message: expect.stringMatching(/refused/) },
      ]);
      expect(h.client.reconciles).toEqual([]);
    }
  });

  it('places an adopted task again, fencing its id, when the master does not know it', () => {
    const h = launcherHarness();
    const unknown = { source: 'SOURCE_MASTER' as const, reason: 'REASON_RECONCILIATION' };
    for (const [i, state] of (['TASK_LOST', 'TASK_UNKNOWN', 'TASK_DROPPED'] as const).entries()) {
      h.launcher.adopt(
        { ...key, instance: `x${i}` },
        { launchId: `x${i}`, launchedAt: 1, node: 'h1' },
        request(),
      );
      h.launcher.onStatus(status(state, { ...unknown, task_id: { value: `meson-x${i}` } }));
    }
    expect(h.updates.map((u) => [u.type, u.key.instance])).toEqual([
      ['lost', 'x0'],
      ['lost', 'x1'],
      ['lost', 'x2'],
    ]);
    expect(h.client.kills.map((k) => k.taskId)).toEqual(['meson-x0', 'meson-x1', 'meson-x2']);
    // one this process launched, or one that was seen running, fails instead
    h.launcher.adopt({ ...key, instance: 'r' }, { launchId: 'r', launchedAt: 1, node: 'h1' }, request());
    h.launcher.onStatus(status('TASK_RUNNING', { task_id: { value: 'meson-r' } }));
    h.launcher.onStatus(status('TASK_LOST', { ...unknown, task_id: { value: 'meson-r' } }));
    expect(h.updates.at(-1)).toMatchObject({
      type: 'finished',
      key: { instance: 'r' },
      status: { phase: 'Failed' },
    });
  });
});
