import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalTaskRunner } from './local-runner.ts';
import type { LaunchedTask, TaskReport } from './master.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup(maxDataBytes?: number) {
  const root = mkdtempSync(join(tmpdir(), 'meson-runner-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const runner = new LocalTaskRunner({
    sandboxRoot: root,
    killGraceMs: 500,
    ...(maxDataBytes ? { maxDataBytes } : {}),
  });
  cleanups.push(() => runner.close());
  return { root, runner };
}

function task(id: string, command: LaunchedTask['task']['command']): LaunchedTask {
  return {
    frameworkId: 'fw',
    agentId: 'ag',
    hostname: 'h',
    task: {
      name: id,
      task_id: { value: id },
      agent_id: { value: 'ag' },
      resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } }],
      ...(command ? { command } : {}),
    } as LaunchedTask['task'],
  };
}

function run(runner: LocalTaskRunner, t: LaunchedTask): Promise<TaskReport[]> {
  const reports: TaskReport[] = [];
  return new Promise((resolve) => {
    runner.launch(t, (r) => {
      reports.push(r);
      if (!['TASK_STARTING', 'TASK_RUNNING'].includes(r.state)) resolve(reports);
    });
  });
}

const sh = (script: string, env: Record<string, string> = {}) => ({
  shell: false,
  value: '/bin/sh',
  arguments: ['/bin/sh', '-c', script],
  environment: { variables: Object.entries(env).map(([name, value]) => ({ name, value })) },
});

describe('LocalTaskRunner', () => {
  it("runs the command in its sandbox with the task's environment only, and sends the result file as data", async () => {
    const { runner } = setup();
    process.env.MESON_RUNNER_SECRET = 'leak';
    cleanups.push(() => delete process.env.MESON_RUNNER_SECRET);
    const reports = await run(
      runner,
      task(
        't1',
        sh('echo "{\\"outputs\\":{\\"x\\":\\"$X\\"}}" > meson-result.json; env > env.txt; echo out', {
          X: 'y',
        }),
      ),
    );
    expect(reports.map((r) => r.state)).toEqual(['TASK_STARTING', 'TASK_RUNNING', 'TASK_FINISHED']);
    expect(Buffer.from(reports[2]!.data!, 'base64').toString()).toBe('{"outputs":{"x":"y"}}\n');
    const sandbox = runner.sandboxes.get('fw/t1')!;
    const env = readFileSync(join(sandbox, 'env.txt'), 'utf8');
    expect(env).toContain(`MESOS_SANDBOX=${sandbox}`);
    expect(env).not.toContain('MESON_RUNNER_SECRET');
    expect(readFileSync(join(sandbox, 'stdout'), 'utf8')).toBe('out\n');
  });

  it('fails a task with its exit status, and one whose result file is too large or a symbolic link', async () => {
    const { runner } = setup(64);
    const exit = await run(runner, task('e', sh('exit 3')));
    expect(exit.at(-1)).toMatchObject({
      state: 'TASK_FAILED',
      reason: 'REASON_COMMAND_EXECUTOR_FAILED',
      message: 'Command exited with status 3',
    });
    const big = await run(runner, task('b', sh('head -c 100 /dev/zero | tr "\\0" x > meson-result.json')));
    expect(big.at(-1)).toMatchObject({
      state: 'TASK_FAILED',
      message: expect.stringMatching(/over the limit maxDataBytes=64/),
    });
    expect(big.at(-1)?.data).toBeUndefined();
    const link = await run(runner, task('l', sh('ln -s /dev/zero meson-result.json')));
    expect(link.at(-1)).toMatchObject({
      state: 'TASK_FAILED',
      message: expect.stringMatching(/symbolic link/),
    });
    const fifo = await run(runner, task('f', sh('mkfifo meson-result.json')));
    expect(fifo.at(-1)).toMatchObject({
      state: 'TASK_FAILED',
      message: expect.stringMatching(/regular file/),
    });
  });

  it('kills the task group on KILL and reports TASK_KILLED; refuses tasks without a command', async () => {
    const { runner } = setup();
    const done = run(runner, task('k', sh('sleep 30 & sleep 30')));
    await new Promise((r) => setTimeout(r, 100));
    runner.kill('fw', 'k');
    expect((await done).at(-1)).toMatchObject({ state: 'TASK_KILLED' });
    const none = await run(runner, task('n', undefined));
    expect(none).toEqual([
      { state: 'TASK_ERROR', reason: 'REASON_TASK_INVALID', message: 'this runner runs command tasks only' },
    ]);
  });
});

describe('LocalTaskRunner: task groups', () => {
  function runGroup(runner: LocalTaskRunner, commands: LaunchedTask['task']['command'][]) {
    const tasks = commands.map((c, i) => task(`g${i}`, c).task);
    const finals = new Map<string, TaskReport>();
    const done = new Promise<Map<string, TaskReport>>((resolve) => {
      runner.launchGroup(
        {
          frameworkId: 'fw',
          agentId: 'ag',
          hostname: 'h',
          executor: { type: 'DEFAULT', executor_id: { value: 'e' } },
          tasks,
        },
        tasks.map((t) => (r: TaskReport) => {
          if (['TASK_STARTING', 'TASK_RUNNING'].includes(r.state)) return;
          finals.set(t.task_id.value, r);
          if (finals.size === tasks.length) resolve(finals);
        }),
      );
    });
    return done;
  }

  it('runs every task of the group as its own process; each ends with its own status', async () => {
    const { runner } = setup();
    const finals = await runGroup(runner, [sh('exit 0'), sh('echo "$MESOS_TASK_ID" > id; exit 0')]);
    expect([...finals.values()].map((r) => r.state)).toEqual(['TASK_FINISHED', 'TASK_FINISHED']);
    expect(readFileSync(join(runner.sandboxes.get('fw/g1')!, 'id'), 'utf8')).toBe('g1\n');
  });

  it('a task that fails kills the rest of its group; a KILL of one kills all', async () => {
    const { runner } = setup();
    const finals = await runGroup(runner, [sh('sleep 30'), sh('exit 3')]);
    expect(finals.get('g1')).toMatchObject({ state: 'TASK_FAILED', message: 'Command exited with status 3' });
    expect(finals.get('g0')?.state).toBe('TASK_KILLED');
    const killed = runGroup(runner, [sh('sleep 30'), sh('sleep 30')]);
    await new Promise((r) => setTimeout(r, 50));
    runner.kill('fw', 'g0');
    expect([...(await killed).values()].map((r) => r.state)).toEqual(['TASK_KILLED', 'TASK_KILLED']);
  });

  it('refuses the whole group when a task has no command value: none is started', async () => {
    const { runner } = setup();
    const finals = await runGroup(runner, [sh('touch started'), { value: '' }]);
    expect([...finals.values()].map((r) => r.state)).toEqual(['TASK_ERROR', 'TASK_ERROR']);
    expect(runner.sandboxes.size).toBe(0);
  });
});
