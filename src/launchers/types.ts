// The launcher port: how the controller starts, watches, adopts and kills step attempts.
// The standalone server uses child processes (src/launchers/local.ts); the operator will use
// Pods bound to nodes and Mesos tasks behind the same interface.
import type { ExecutorStatus, ExecutorStep, Link } from '../../executors/protocol.ts';
import type { ResourceRequest } from '../offer-adapter/types.ts';
import type { Toleration } from '../scheduler/types.ts';

export interface AttemptKey {
  namespace: string;
  run: string;
  instance: string;
  attempt: number;
}

/** Just the attempt's key, copied (a LaunchRequest is an AttemptKey with much more in it). */
export function attemptKey(k: AttemptKey): AttemptKey {
  return { namespace: k.namespace, run: k.run, instance: k.instance, attempt: k.attempt };
}

export interface LaunchRequest extends AttemptKey {
  workflow: string;
  step: ExecutorStep;
  /** Epoch ms when the task was queued (a milestone). */
  queuedAt?: number;
  /** The WorkflowRun's uid: Pods get an owner reference to it (Kubernetes launcher). */
  runUid?: string;
  /** What the placement granted; Pods request (and are limited to) exactly this. */
  resources?: ResourceRequest;
  /**
   * The step's tolerations (the scheduler placed it on a node whose taints they tolerate): its
   * Pod carries them, so that a NoExecute taint it tolerates does not evict it.
   */
  tolerations?: Toleration[];
  /** Service account of the attempt's Pod; its token is mounted only when `automountToken`. */
  serviceAccount?: { name?: string; automountToken?: boolean };
}

/** What the controller persists about a launched attempt, enough to adopt it after a restart. */
export interface LaunchRecord {
  launchId: string;
  /** Attempt directory (local launcher) or other launcher-specific locator. */
  dir?: string;
  pid?: number;
  inProcess?: boolean;
  launchedAt: number;
  /** Where the scheduler placed the attempt (set by the controller after prepare). */
  node?: string;
  /** The attempt's Pod (Kubernetes launcher), in the run's namespace. */
  pod?: string;
}

export type AttemptUpdate =
  | { type: 'running'; key: AttemptKey; status: ExecutorStatus }
  | { type: 'finished'; key: AttemptKey; status: ExecutorStatus }
  /** The attempt never started (and is now fenced off): launch it again. */
  | { type: 'lost'; key: AttemptKey; message: string }
  /**
   * Links the attempt has from its launch on, before it runs (the Spark UI of a driver Pod),
   * reported once what they point at exists. Its end may report links again (the step's own).
   */
  | { type: 'links'; key: AttemptKey; links: Link[] };

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
  /**
   * The attempt's end (its 'finished' update) is committed to the store, so nothing will adopt
   * or watch it again: the launcher may free what it kept for it (the Kubernetes launcher deletes
   * the finished Pod when its pod GC policy says so). Called after the commit, at most once per
   * reported end (again if the end is reported again, after a rebuild); must not throw. Optional:
   * the local and Mesos launchers keep nothing that outlives the attempt's own record.
   */
  settled?(key: AttemptKey): void;
  /** Stops watching; running attempts keep running. */
  close(): void;
}
