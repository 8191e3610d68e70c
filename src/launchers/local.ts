// The local launcher: each attempt is one executor process (executors/executor.ts) started
// detached, in its own process group, so it survives the server. The launcher watches its
// status.json (the executor replaces it atomically) and reports updates to the controller.
//
// Noop steps complete in-process without a child process: they have no side effect, so running
// one again after a crash is harmless, and a 10,000-way foreach of noops must not fork 10,000
// Node processes.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { executorEnvironment } from '../../executors/env.ts';
import { containerName, removeContainer, which } from '../../executors/executor.ts';
import {
  type CopyLimits,
  checkLinks,
  checkOutputs,
  StepFileError,
  type StepLimits,
  truncateMessage,
  withLimits,
} from '../../executors/limits.ts';
import { groupIsOurs, processAlive, signalGroup } from '../../executors/process.ts';
import {
  claimAttempt,
  type ExecutorStatus,
  readClaim,
  readStatus,
  TASK_FILE,
  type TaskFile,
  writeStatus,
} from '../../executors/protocol.ts';
import {
  type AttemptKey,
  type AttemptUpdate,
  attemptKey,
  type Launcher,
  type LaunchRecord,
  type LaunchRequest,
} from './types.ts';

export const EXECUTOR_PATH = fileURLToPath(new URL('../../executors/executor.ts', import.meta.url));

export interface LocalLauncherOptions {
  /** Attempt directory for (key, launchId); the store decides where (Store.attemptDir). */
  attemptDir: (key: AttemptKey, launchId: string) => string;
  onUpdate: (u: AttemptUpdate) => void;
  newLaunchId: () => string;
  now?: () => number;
  /**
   * One working directory shared by all steps (`mesonctl run`: the current directory). Default:
   * each attempt gets its own (`<attempt dir>/work`, also its HOME).
   */
  cwd?: string;
  /** Extra environment for every step (the operator's; workflows cannot set it). */
  env?: Record<string, string>;
  /** The server's environment: the executor gets only what it needs of it (default process.env). */
  serverEnv?: NodeJS.ProcessEnv;
  /** Names of server environment variables that steps may see (--step-env-passthrough). */
  envPassthrough?: string[];
  /**
   * The copy roots of a namespace (absolute directories, the first the base of relative paths,
   * and `s3://bucket/prefix/` object store roots).
   */
  copyRoots?: (namespace: string) => string[];
  /** Bounds on copies to and from an object store (defaults: executors/copy-s3.ts). */
  copyLimits?: Partial<CopyLimits>;
  /** Limits on outputs, links and messages (defaults: executors/limits.ts). */
  limits?: Partial<StepLimits>;
  /**
   * Node's compile cache for the executors (NODE_COMPILE_CACHE): each executor is a fresh Node
   * process compiling the same TypeScript modules; with the cache its start-up takes about half.
   */
  compileCacheDir?: string;
  nodePath?: string;
  executorPath?: string;
  /** How often status files are read for attempts not started by this process. */
  pollMs?: number;
  /** How long an attempt may stay unclaimed before it is declared lost. */
  startGraceMs?: number;
}

interface Watched {
  key: AttemptKey;
  record: LaunchRecord;
  child?: ChildProcess;
  reportedRunning: boolean;
  done: boolean;
  /** The executor died while its step's process group lived: the group is being killed. */
  reaping?: boolean;
  /** A dead executor's container is being removed: checks wait for it. */
  removing?: boolean;
}

function keyString(k: AttemptKey): string {
  return `${k.namespace}\u0000${k.run}\u0000${k.instance}\u0000${k.attempt}`;
}

/** Whether `pid` is alive and (where /proc exists) still an executor of `dir`: pids get reused. */
function executorAlive(pid: number, dir: string): boolean {
  if (!processAlive(pid)) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir);
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

export class LocalLauncher implements Launcher {
  private readonly opts: LocalLauncherOptions;
  private readonly now: () => number;
  private readonly watched = new Map<string, Watched>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  private readonly limits: StepLimits;
  /** status.json is read bounded: what the executor writes under these limits, with room for JSON escapes. */
  private readonly statusMaxBytes: number;

  constructor(opts: LocalLauncherOptions) {
    this.opts = opts;
    this.now = opts.now ?? Date.now;
    this.limits = withLimits(opts.limits);
    this.statusMaxBytes =
      8 * (this.limits.outputsBytes + this.limits.linksBytes + this.limits.messageBytes) + 64 * 1024;
  }

  private readStatus(dir: string): ExecutorStatus | undefined {
    return readStatus(dir, this.statusMaxBytes);
  }

  /**
   * A terminal status as the controller may take it. status.json is written by the executor, but
   * the step runs as the same user and knows the directory: what it reports is checked again.
   */
  /** The executor's environment (also what container clients run with). */
  private get executorEnv(): Record<string, string> {
    return this.executorEnvFor();
  }

  /** A copy step's executor also gets the object store's configuration (OBJECT_STORE_CLIENT_ENV). */
  private executorEnvFor(stepType?: string): Record<string, string> {
    return {
      ...executorEnvironment(this.opts.serverEnv ?? process.env, this.opts.envPassthrough, {
        objectStore: stepType === 'copy',
      }),
      ...(this.opts.compileCacheDir ? { NODE_COMPILE_CACHE: this.opts.compileCacheDir } : {}),
    };
  }

  private checked(status: ExecutorStatus): ExecutorStatus {
    const out: ExecutorStatus = { ...status, phase: status.phase === 'Succeeded' ? 'Succeeded' : 'Failed' };
    try {
      if (out.outputs !== undefined) {
        if (typeof out.outputs !== 'object' || out.outputs === null || Array.isArray(out.outputs))
          throw new StepFileError('EXECUTOR_OUTPUTS_INVALID', 'outputs: expected an object');
        checkOutputs(out.outputs, this.limits);
      }
      if (out.links !== undefined) {
        if (
          !Array.isArray(out.links) ||
          out.links.some((l) => typeof l?.name !== 'string' || typeof l?.url !== 'string')
        )
          throw new StepFileError('EXECUTOR_LINKS_INVALID', 'links: expected a list of {name, url}');
        checkLinks(out.links, this.limits);
      }
    } catch (err) {
      const code = err instanceof StepFileError ? err.code : 'EXECUTOR_OUTPUTS_INVALID';
      delete out.outputs;
      delete out.links;
      out.phase = 'Failed';
      out.message = `${code}: ${(err as Error).message}`;
    }
    if (typeof out.message === 'string') out.message = truncateMessage(out.message, this.limits.messageBytes);
    else delete out.message;
    return out;
  }

  prepare(req: LaunchRequest): LaunchRecord {
    const launchId = this.opts.newLaunchId();
    const launchedAt = this.now();
    if (req.step.type === 'noop') return { launchId, inProcess: true, launchedAt };
    return { launchId, dir: this.opts.attemptDir(attemptKey(req), launchId), launchedAt };
  }

  launch(req: LaunchRequest, record: LaunchRecord): void {
    const key = attemptKey(req);
    const { launchId, launchedAt } = record;
    if (record.inProcess || !record.dir) {
      this.completeNoop(key, record, req);
      return;
    }
    const dir = record.dir;
    mkdirSync(dir, { recursive: true });
    const task: TaskFile = {
      launchId,
      namespace: req.namespace,
      run: req.run,
      workflow: req.workflow,
      instance: req.instance,
      attempt: req.attempt,
      step: req.step,
      queuedAt: req.queuedAt,
      launchedAt,
      ...(this.opts.cwd ? { cwd: this.opts.cwd } : {}),
      ...(this.opts.env ? { env: this.opts.env } : {}),
      ...(this.opts.envPassthrough?.length ? { envPassthrough: this.opts.envPassthrough } : {}),
      ...(this.opts.copyRoots ? { copyRoots: this.opts.copyRoots(req.namespace) } : {}),
      ...(this.opts.copyLimits ? { copyLimits: this.opts.copyLimits } : {}),
      ...(this.opts.limits ? { limits: this.opts.limits } : {}),
    };
    writeFileSync(join(dir, TASK_FILE), JSON.stringify(task));
    const log = openSync(join(dir, 'executor.log'), 'a');
    const w: Watched = { key, record, reportedRunning: false, done: false };
    this.watched.set(keyString(key), w);
    try {
      const child = spawn(
        this.opts.nodePath ?? process.execPath,
        [this.opts.executorPath ?? EXECUTOR_PATH, dir],
        {
          detached: true,
          stdio: ['ignore', log, log],
          cwd: dir,
          // not the server's environment: MESON_API_TOKEN and the like stay out of reach
          env: this.executorEnvFor(req.step.type),
        },
      );
      record.pid = child.pid;
      w.child = child;
      child.unref();
      child.on('exit', () => this.check(w));
      child.on('error', (err) => {
        this.finish(w, {
          launchId,
          pid: 0,
          phase: 'Failed',
          message: `could not start the executor: ${err.message}`,
          milestones: { launched: launchedAt, finished: this.now() },
        });
      });
    } finally {
      closeSync(log);
    }
    this.ensureTimer();
  }

  private completeNoop(key: AttemptKey, record: LaunchRecord, req: LaunchRequest): void {
    const w: Watched = { key, record, reportedRunning: true, done: false };
    this.watched.set(keyString(key), w);
    queueMicrotask(() => {
      if (w.done || this.closed) return;
      const t = this.now();
      this.finish(w, {
        launchId: record.launchId,
        pid: process.pid,
        phase: 'Succeeded',
        exitCode: 0,
        milestones: { queued: req.queuedAt, launched: record.launchedAt, running: t, finished: t },
      });
    });
  }

  adopt(key: AttemptKey, record: LaunchRecord, req: LaunchRequest): void {
    const k = keyString(key);
    if (this.watched.has(k)) return;
    if (record.inProcess) {
      // an in-process noop does not survive its server: simply complete it again
      this.completeNoop(key, record, req);
      return;
    }
    const w: Watched = { key, record, reportedRunning: false, done: false };
    this.watched.set(k, w);
    this.check(w);
    this.ensureTimer();
  }

  kill(key: AttemptKey, record: LaunchRecord): void {
    const w = this.watched.get(keyString(key));
    if (record.inProcess) {
      if (w && !w.done) {
        this.finish(w, {
          launchId: record.launchId,
          pid: process.pid,
          phase: 'Failed',
          message: 'killed',
          milestones: { launched: record.launchedAt, finished: this.now() },
        });
      }
      return;
    }
    // the pid in status.json is the step's to overwrite: signal it only if it is this attempt's executor
    const dir = record.dir;
    const pid = [record.pid, dir ? this.readStatus(dir)?.pid : undefined].find(
      (p): p is number => typeof p === 'number' && dir !== undefined && executorAlive(p, dir),
    );
    // the executor forwards it to the step's process group; a dead executor's group is killed by check()
    if (pid !== undefined && !signalGroup(pid, 'SIGTERM')) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone: the next check reports how it ended
      }
    }
    if (w) setTimeout(() => this.check(w), 50).unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.watched.clear();
  }

  private ensureTimer(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => {
      for (const w of this.watched.values()) if (w.record.dir) this.check(w);
    }, this.opts.pollMs ?? 200);
    this.timer.unref();
  }

  private finish(w: Watched, status: ExecutorStatus): void {
    if (w.done) return;
    w.done = true;
    this.watched.delete(keyString(w.key));
    if (!this.closed) this.opts.onUpdate({ type: 'finished', key: w.key, status });
  }

  /** Reads the attempt's files and reports what changed. Safe to call any number of times. */
  private check(w: Watched): void {
    if (w.done || this.closed || w.removing) return;
    const dir = w.record.dir;
    if (!dir) return;
    const status = this.readStatus(dir);
    if (status && status.launchId === w.record.launchId) {
      if (status.phase !== 'Running') {
        this.finish(w, this.checked(status));
        return;
      }
      if (!executorAlive(status.pid, dir)) {
        // re-read: the executor may have finished between the two reads
        const again = this.readStatus(dir);
        if (again && again.launchId === w.record.launchId && again.phase !== 'Running')
          this.finish(w, this.checked(again));
        else this.executorDied(w, dir, again ?? status);
        return;
      }
      if (!w.reportedRunning) {
        w.reportedRunning = true;
        this.opts.onUpdate({ type: 'running', key: w.key, status });
      }
      return;
    }
    // no status yet: the executor is starting, died before claiming, or never started
    const claim = readClaim(dir);
    if (claim?.startsWith('executor ')) {
      const pid = Number(claim.slice('executor '.length));
      if (executorAlive(pid, dir)) return;
      const again = this.readStatus(dir);
      if (again) {
        this.check(w);
        return;
      }
      this.finish(w, {
        launchId: w.record.launchId,
        pid,
        phase: 'Failed',
        message: 'the executor process died before it started the step',
        milestones: { launched: w.record.launchedAt, finished: this.now() },
      });
      return;
    }
    if (claim?.startsWith('controller ')) {
      this.lose(w); // fenced earlier (by this or a previous server): it will never run
      return;
    }
    if (claim !== undefined) return; // unreadable for a moment: look again at the next check
    const childGone = w.child ? w.child.exitCode !== null || w.child.signalCode !== null : true;
    const overdue = this.now() - w.record.launchedAt > (this.opts.startGraceMs ?? 15_000);
    const pidAlive = w.record.pid !== undefined && executorAlive(w.record.pid, dir);
    if ((childGone && !pidAlive) || overdue) {
      // fence: after this, a late executor finds the claim taken and exits without running
      if (claimAttempt(dir, `controller ${process.pid} (executor did not start)`)) this.lose(w);
      else this.check(w); // the executor claimed it just now
    }
  }

  /**
   * The executor is gone but status.json says Running (kill -9, OOM killer): its step's process
   * group may still run. Kill it, and report the end only once the group is gone, so that a retry
   * never overlaps the attempt it replaces; then record the attempt's real end in status.json.
   */
  private executorDied(w: Watched, dir: string, status: ExecutorStatus): void {
    const pgid = status.childPid;
    if (typeof pgid === 'number' && groupIsOurs(pgid, status.childStartTime)) {
      // until it is gone (a process in uninterruptible I/O dies when the I/O ends): no retry before
      signalGroup(pgid, 'SIGKILL');
      w.reaping = true;
      setTimeout(() => this.check(w), 20).unref();
      return;
    }
    // its container, if any, outlives the killed client: remove it, by this launch's name only (the
    // runtime is looked up again, never run from what status.json says)
    const runtime = status.container ? basename(String(status.container.runtime)) : undefined;
    const path =
      (runtime === 'docker' || runtime === 'podman') &&
      status.container?.name === containerName(w.record.launchId)
        ? which(runtime, this.executorEnv)
        : undefined;
    if (path && !w.removing) {
      w.removing = true;
      void removeContainer({ runtime: path, name: containerName(w.record.launchId) }, this.executorEnv).then(
        () => this.recordDeath(w, dir, status),
      );
      return;
    }
    if (!w.removing) this.recordDeath(w, dir, status);
  }

  private recordDeath(w: Watched, dir: string, status: ExecutorStatus): void {
    const pgid = status.childPid;
    const signal = w.child?.signalCode ?? undefined;
    const ended: ExecutorStatus = {
      launchId: status.launchId,
      pid: status.pid,
      ...(typeof pgid === 'number' ? { childPid: pgid } : {}),
      phase: 'Failed',
      ...(signal ? { signal } : {}),
      message: `EXECUTOR_DIED: the executor died${signal ? ` (killed by ${signal})` : ''} without recording a result${w.reaping ? '; the processes of its step were killed' : ''}${w.removing ? '; its container was removed' : ''}`,
      milestones: { ...status.milestones, finished: this.now() },
    };
    try {
      writeStatus(dir, ended);
    } catch {
      // the attempt directory is gone: the update still reports the end
    }
    this.finish(w, ended);
  }

  private lose(w: Watched): void {
    w.done = true;
    this.watched.delete(keyString(w.key));
    if (!this.closed) {
      this.opts.onUpdate({
        type: 'lost',
        key: w.key,
        message: 'the executor did not start; launching again',
      });
    }
  }
}
