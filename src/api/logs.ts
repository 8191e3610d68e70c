// Where the REST API reads step logs from: a LogSource. Standalone, an attempt's logs are
// files under the store's data directory (FileLogSource, below); in operator mode they are the
// step Pod's container log, read through the API server's pods/log (./pod-logs.ts).
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { type ExecutorStatus, readStatus } from '../../executors/protocol.ts';
import type { StoreReads } from '../store/port.ts';
import type { Stream } from './streams.ts';

/** The steps' phases after which no more output comes. */
export const STEP_ENDED = new Set(['Succeeded', 'Failed', 'Skipped', 'Stopped']);
/** Bytes of a followed log read at a time. */
const READ_CHUNK = 64 * 1024;

/** One launch of one attempt of a step instance, with the executor's milestones. */
export interface AttemptInfo {
  attempt: number;
  launchId: string;
  phase: string;
  milestones: ExecutorStatus['milestones'];
  exitCode?: number;
  message?: string;
}

export interface LogTarget {
  ns: string;
  run: string;
  step: string;
  /** stdout, stderr or both (in this order). */
  streams: ('stdout' | 'stderr')[];
}

export interface LogSource {
  /** True when stdout and stderr are one log (a container's): `streams` is then ignored. */
  readonly combined: boolean;
  /** Every launch of every attempt of the step instance, oldest first. */
  attempts(ns: string, run: string, step: string): Promise<AttemptInfo[]>;
  /** The attempt's log as it is now; undefined when the attempt left none. */
  read(at: LogTarget & { attempt: number }): Promise<string | undefined>;
  /**
   * Writes the log to `stream` as it is written (what exists first), until the attempt ends
   * (then closes `stream`); without `attempt`, the latest one. Frees what it holds when `stream`
   * closes, whoever closes it.
   */
  follow(at: LogTarget & { attempt?: number }, stream: Stream): void;
}

/** The newest launch directory of an attempt (a lost executor is relaunched under a new launch id). */
export function latestAttemptDir(sample: string, attempt: number): string | undefined {
  const parent = dirname(sample);
  if (!existsSync(parent)) return undefined;
  const dirs = readdirSync(parent)
    .filter((d) => d.startsWith(`${attempt}-`))
    .map((d) => join(parent, d))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  return dirs[dirs.length - 1];
}

/** The directory of one launch of one attempt (SqliteStore.attemptDir: checked names). */
export type AttemptDirOf = (
  namespace: string,
  run: string,
  instance: string,
  attempt: number,
  launchId: string,
) => string;

/** Logs as files of the attempt directories (standalone: the executor writes them). */
export class FileLogSource implements LogSource {
  readonly combined = false;
  private readonly store: StoreReads;
  private readonly attemptDir: AttemptDirOf;
  private readonly pollMs: number;

  constructor(store: StoreReads, attemptDir: AttemptDirOf, pollMs: number) {
    this.store = store;
    this.attemptDir = attemptDir;
    this.pollMs = pollMs;
  }

  async attempts(ns: string, run: string, step: string): Promise<AttemptInfo[]> {
    const parent = dirname(this.attemptDir(ns, run, step, 1, 'x'));
    if (!existsSync(parent)) return [];
    return readdirSync(parent)
      .map((d): AttemptInfo | undefined => {
        const m = /^(\d+)-(.+)$/.exec(d);
        if (!m) return undefined;
        const status = readStatus(join(parent, d));
        return {
          attempt: Number(m[1]),
          launchId: m[2]!,
          ...(status
            ? {
                phase: status.phase,
                milestones: status.milestones,
                ...(status.exitCode !== undefined ? { exitCode: status.exitCode } : {}),
                ...(status.message ? { message: status.message } : {}),
              }
            : { phase: 'NotStarted', milestones: {} }),
        };
      })
      .filter((a) => a !== undefined)
      .sort((a, b) => a.attempt - b.attempt || (a.milestones?.launched ?? 0) - (b.milestones?.launched ?? 0));
  }

  async read(at: LogTarget & { attempt: number }): Promise<string | undefined> {
    const dir = latestAttemptDir(this.attemptDir(at.ns, at.run, at.step, at.attempt, 'x'), at.attempt);
    if (!dir) return undefined;
    return at.streams
      .map((s) => join(dir, `${s}.log`))
      .map((f) => (existsSync(f) ? readFileSync(f, 'utf8') : ''))
      .join('');
  }

  /**
   * Polls the files every pollMs: sends the new bytes in bounded chunks, and not while the
   * client has not read the previous ones; ends when the attempt ends (its executor status,
   * the step's phase, a retry, or the run is gone) and everything was sent.
   */
  follow(at: LogTarget & { attempt?: number }, stream: Stream): void {
    const offsets = new Map<string, number>();
    let dir: string | undefined;
    let attempt = at.attempt;
    const buf = Buffer.alloc(READ_CHUNK);
    const files = at.streams.map((s) => `${s}.log`);
    /** Sends new bytes of each file; false when the client is behind (try again later). */
    const pump = (): boolean => {
      if (!dir) return true;
      for (const f of files) {
        const path = join(dir, f);
        if (!existsSync(path)) continue;
        const fd = openSync(path, 'r');
        try {
          for (;;) {
            if (stream.behind()) return false;
            const off = offsets.get(f) ?? 0;
            const n = readSync(fd, buf, 0, READ_CHUNK, off);
            if (n === 0) break;
            offsets.set(f, off + n);
            if (!stream.write(Buffer.from(buf.subarray(0, n)))) return true;
          }
        } finally {
          closeSync(fd);
        }
      }
      return true;
    };
    const ended = (): boolean => {
      const inst = this.store.getStepInstance(at.ns, at.run, at.step);
      if (!inst) return true;
      const data = inst.data as { phase?: string; attempts?: number };
      if (attempt === undefined) {
        if ((data.attempts ?? 0) < 1) return STEP_ENDED.has(data.phase ?? '');
        attempt = data.attempts ?? 1;
      }
      if (!dir) dir = latestAttemptDir(this.attemptDir(at.ns, at.run, at.step, attempt, 'x'), attempt);
      if (STEP_ENDED.has(data.phase ?? '') || (data.attempts ?? 0) > attempt) return true;
      const status = dir ? readStatus(dir) : undefined;
      return status !== undefined && status.phase !== 'Running';
    };
    const tick = () => {
      if (stream.closed) return;
      try {
        const over = ended();
        const caughtUp = pump();
        if (over && caughtUp) stream.close();
      } catch {
        stream.close();
      }
    };
    const timer = setInterval(tick, this.pollMs);
    stream.onClose(() => clearInterval(timer));
    tick();
  }
}
