// The launcher port: how the controller starts, watches, adopts and kills step attempts.
// The standalone server uses child processes (src/launchers/local.ts); the operator will use
// Pods bound to nodes and Mesos tasks behind the same interface.
import type { ExecutorStatus, ExecutorStep } from '../../executors/protocol.ts';

export interface AttemptKey {
  namespace: string;
  run: string;
  instance: string;
  attempt: number;
}

export interface LaunchRequest extends AttemptKey {
  workflow: string;
  step: ExecutorStep;
  /** Epoch ms when the task was queued (a milestone). */
  queuedAt?: number;
}

/** What the controller persists about a launched attempt, enough to adopt it after a restart. */
export interface LaunchRecord {
  launchId: string;
  /** Attempt directory (local launcher) or other launcher-specific locator. */
  dir?: string;
  pid?: number;
  inProcess?: boolean;
  launchedAt: number;
  node?: string;
}

export type AttemptUpdate =
  | { type: 'running'; key: AttemptKey; status: ExecutorStatus }
  | { type: 'finished'; key: AttemptKey; status: ExecutorStatus }
  /** The attempt never started (and is now fenced off): launch it again. */
  | { type: 'lost'; key: AttemptKey; message: string };

export interface Launcher {
  /**
   * Decides where the attempt will live (launch id, directory) without side effects: the caller
   * persists the record BEFORE calling launch, so that a crash in between is recovered by
   * adopting (and, if the executor never started, fencing) rather than launching twice.
   */
  prepare(req: LaunchRequest): LaunchRecord;
  /** Starts the attempt. Never throws for a bad step: reports it as finished/Failed. */
  launch(req: LaunchRequest, record: LaunchRecord): void;
  /** Watches an attempt launched earlier (maybe by a previous server process). Idempotent. */
  adopt(key: AttemptKey, record: LaunchRecord, req: LaunchRequest): void;
  /** Asks the attempt to stop; its end is reported as a 'finished' update. */
  kill(key: AttemptKey, record: LaunchRecord): void;
  /** Stops watching; running attempts keep running. */
  close(): void;
}
