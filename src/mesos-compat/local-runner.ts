// A task runner for the master-compatible endpoint that runs each task's command on this machine,
// the way a Mesos agent's command executor would: in a fresh sandbox directory (its cwd and
// MESOS_SANDBOX), with the TaskInfo's environment and nothing of the endpoint's own (PATH
// apart), stdout and stderr to `stdout` / `stderr` files in the sandbox, in its own process group.
//
// It reports TASK_STARTING and TASK_RUNNING when the process starts, then TASK_FINISHED (exit 0)
// or TASK_FAILED (`Command exited with status N`, or the signal); a kill sends SIGTERM to the
// group, SIGKILL after `killGraceMs`, and reports TASK_KILLED.
//
// Like Meson's Mesos executor on a real agent would, the terminal update carries the file
// `resultFile` of the sandbox (the executor's envelope, see src/launchers/mesos.ts) as its
// `data`, read bounded (`maxDataBytes`, no symbolic link, regular files only): a bigger file
// fails the task saying so instead of being cut.
//
// A task group runs each of its tasks as such a process (each in its own sandbox), with the
// default executor's policy: a task that fails or is killed kills the others (TASK_KILLED), and a
// KILL of any task of the group kills them all.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { readStepFile } from '../../executors/limits.ts';
import { signalGroup } from '../../executors/process.ts';
import type { LaunchedGroup, LaunchedTask, MesosTaskRunner, TaskReport } from './master.ts';
import { isTerminalState } from './schemas.ts';

export interface LocalTaskRunnerOptions {
  /** Directory under which each task gets its sandbox. */
  sandboxRoot: string;
  /** Name of the sandbox file sent as the terminal update's data (default meson-result.json). */
  resultFile?: string;
  /** Largest data sent (default 64 KiB; at most 1 MiB, the schema's bound). */
  maxDataBytes?: number;
  /** SIGTERM to SIGKILL (default 10 s). */
  killGraceMs?: number;
  /** PATH of the tasks (default this process's). */
  path?: string;
}

interface Running {
  child?: ChildProcess;
  report: (r: TaskReport) => void;
  killed: boolean;
  done: boolean;
}

export class LocalTaskRunner implements MesosTaskRunner {
  private readonly o: LocalTaskRunnerOptions;
  private readonly running = new Map<string, Running>();
  /** Sandboxes by `frameworkId/taskId`, for tests and logs. */
  readonly sandboxes = new Map<string, string>();
  /** The keys of each live group task's group, by its key. */
  private readonly groups = new Map<string, string[]>();

  constructor(opts: LocalTaskRunnerOptions) {
    this.o = opts;
  }

  launch(t: LaunchedTask, report: (r: TaskReport) => void): void {
    const key = `${t.frameworkId}/${t.task.task_id.value}`;
    const r: Running = { report, killed: false, done: false };
    this.running.set(key, r);
    const finish = (rep: TaskReport) => {
      if (r.done) return;
      r.done = true;
      this.running.delete(key);
      report(rep);
    };
    const cmd = t.task.command;
    if (!cmd?.value) {
      finish({
        state: 'TASK_ERROR',
        reason: 'REASON_TASK_INVALID',
        message: 'this runner runs command tasks only',
      });
      return;
    }
    mkdirSync(this.o.sandboxRoot, { recursive: true });
    const sandbox = mkdtempSync(join(this.o.sandboxRoot, 'task-'));
    this.sandboxes.set(key, sandbox);
    const env: Record<string, string> = {
      PATH: this.o.path ?? process.env.PATH ?? '/usr/bin:/bin',
      MESOS_SANDBOX: sandbox,
      MESOS_TASK_ID: t.task.task_id.value,
    };
    for (const v of cmd.environment?.variables ?? []) if (v.value !== undefined) env[v.name] = v.value;
    // shell: false runs `value` with `arguments` as its argv (argv[0] included), as Mesos does
    const [file, argv] =
      cmd.shell === false
        ? [cmd.value!, (cmd.arguments ?? [cmd.value!]).slice(1)]
        : ['/bin/sh', ['-c', cmd.value!]];
    const out = openSync(join(sandbox, 'stdout'), 'a');
    const err = openSync(join(sandbox, 'stderr'), 'a');
    try {
      r.child = spawn(file, argv, { cwd: sandbox, env, stdio: ['ignore', out, err], detached: true });
    } catch (e) {
      finish({
        state: 'TASK_FAILED',
        reason: 'REASON_COMMAND_EXECUTOR_FAILED',
        message: (e as Error).message,
      });
      return;
    } finally {
      closeSync(out);
      closeSync(err);
    }
    report({ state: 'TASK_STARTING' });
    report({ state: 'TASK_RUNNING' });
    r.child.on('error', (e) =>
      finish({ state: 'TASK_FAILED', reason: 'REASON_COMMAND_EXECUTOR_FAILED', message: e.message }),
    );
    r.child.on('exit', (code, signal) => {
      if (r.child?.pid !== undefined) signalGroup(r.child.pid, 'SIGKILL'); // leftovers go with it
      if (r.killed) {
        finish({ state: 'TASK_KILLED', message: `Command terminated with signal ${signal ?? 'SIGTERM'}` });
        return;
      }
      const data = this.result(sandbox);
      if ('problem' in data) {
        finish({ state: 'TASK_FAILED', reason: 'REASON_COMMAND_EXECUTOR_FAILED', message: data.problem });
        return;
      }
      const withData = data.base64 !== undefined ? { data: data.base64 } : {};
      if (code === 0)
        finish({ state: 'TASK_FINISHED', message: 'Command exited with status 0', ...withData });
      else
        finish({
          state: 'TASK_FAILED',
          reason: 'REASON_COMMAND_EXECUTOR_FAILED',
          message:
            code !== null ? `Command exited with status ${code}` : `Command terminated with signal ${signal}`,
          ...withData,
        });
    });
  }

  private result(sandbox: string): { base64?: string } | { problem: string } {
    const max = Math.min(this.o.maxDataBytes ?? 64 * 1024, 1024 * 1024);
    try {
      const text = readStepFile(join(sandbox, this.o.resultFile ?? 'meson-result.json'), max, {
        tooLarge: 'EXECUTOR_OUTPUTS_TOO_LARGE',
        invalid: 'EXECUTOR_OUTPUTS_INVALID',
        label: 'the task result',
        limit: 'maxDataBytes',
      });
      return text === undefined ? {} : { base64: Buffer.from(text).toString('base64') };
    } catch (err) {
      return { problem: (err as Error).message };
    }
  }

  launchGroup(g: LaunchedGroup, reports: ((r: TaskReport) => void)[]): void {
    // all or none: a task it could not start would leave the others running alone
    if (g.tasks.some((t) => !t.command?.value)) {
      for (const report of reports)
        report({
          state: 'TASK_ERROR',
          reason: 'REASON_TASK_GROUP_INVALID',
          message: 'this runner runs command tasks only: every task of the group needs command.value',
        });
      return;
    }
    const keys = g.tasks.map((t) => `${g.frameworkId}/${t.task_id.value}`);
    for (const k of keys) this.groups.set(k, keys);
    for (const [i, task] of g.tasks.entries()) {
      this.launch({ frameworkId: g.frameworkId, agentId: g.agentId, hostname: g.hostname, task }, (r) => {
        if (isTerminalState(r.state)) this.groups.delete(keys[i]!);
        reports[i]!(r);
        // the default executor's policy: a task that fails or is killed kills the rest
        if (r.state === 'TASK_FAILED' || r.state === 'TASK_KILLED') for (const k of keys) this.killKey(k);
      });
    }
  }

  /** Kills the task; a task of a group, the whole group. */
  kill(frameworkId: string, taskId: string): void {
    const key = `${frameworkId}/${taskId}`;
    for (const k of this.groups.get(key) ?? [key]) this.killKey(k);
  }

  private killKey(key: string): void {
    const r = this.running.get(key);
    if (!r || r.done) return;
    r.killed = true;
    const pid = r.child?.pid;
    if (pid === undefined) return;
    signalGroup(pid, 'SIGTERM');
    setTimeout(() => signalGroup(pid, 'SIGKILL'), this.o.killGraceMs ?? 10_000).unref();
  }

  /** Kills every running task (the endpoint is shutting down). */
  close(): void {
    for (const r of this.running.values()) {
      r.killed = true;
      if (r.child?.pid !== undefined) signalGroup(r.child.pid, 'SIGKILL');
    }
  }
}
