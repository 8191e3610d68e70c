import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A control-plane component running in its own process group, its output appended to a log
 * file. Process groups let stop() take down anything the component forked, and let
 * `cluster:down` stop a cluster whose parent process has long exited.
 */
export interface Component {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Set once the process has exited (while the parent watches it). */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves when the group is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logPath: string;
  env?: NodeJS.ProcessEnv;
  /** Keep running after this Node process exits (cluster:up); tests leave this false. */
  persistent?: boolean;
}

const running = new Set<number>();
let handlersInstalled = false;

/** Kills every group this process started and has not stopped yet (synchronously). */
export function killAllSync(): void {
  for (const pgid of running) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  running.clear();
}

// A test run interrupted with Ctrl-C (or killed by CI with SIGTERM) must not leave etcd and
// kube-apiserver behind. SIGKILL is the one signal we cannot react to.
function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      killAllSync();
      process.off(signal, onSignal);
      // Re-raise so the default behaviour (or other handlers) still applies.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

export function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stops a process group by id: SIGTERM, then SIGKILL after `graceMs`. Idempotent. */
export async function stopGroup(pgid: number, graceMs = 10_000): Promise<void> {
  const signal = (s: NodeJS.Signals): void => {
    try {
      process.kill(-pgid, s);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
  if (groupAlive(pgid)) {
    signal('SIGKILL');
    while (groupAlive(pgid)) await sleep(20);
  }
  running.delete(pgid);
}

export function startComponent(options: StartOptions): Component {
  if (!options.persistent) installExitHandlers();
  const fd = openSync(options.logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, {
      detached: true, // own process group
      stdio: ['ignore', fd, fd],
      env: options.env ?? process.env,
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${options.name} (${options.command})`);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  child.on('exit', (code, signal) => {
    exit = { code, signal };
  });
  child.on('error', () => {
    exit ??= { code: null, signal: null };
  });
  if (options.persistent) child.unref();
  else running.add(pid);
  return {
    name: options.name,
    pid,
    logPath: options.logPath,
    exited: () => exit,
    stop: (graceMs) => stopGroup(pid, graceMs),
  };
}

/** The last lines of a log, for error messages. */
export function logTail(path: string, lines = 40): string {
  try {
    const text = readFileSync(path, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
