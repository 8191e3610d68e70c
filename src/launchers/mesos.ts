// The Mesos launcher: a placement on a Mesos offer becomes an ACCEPT with a LAUNCH of one TaskInfo
// whose command runs the executor program (executors/pod.ts, `meson-executor` in the executor
// image). Task status updates become attempt updates (see `updateFor`). docs/mesos.md
// ("Steps as Mesos tasks") describes the design; in short:
//
// - the step travels as MESON_TASK (TaskFile JSON, at most `maxTaskBytes`) in the command's
//   environment, never in its command line; the command is `shell: false`;
// - the executor writes its envelope `{outputs, links, message}` (at most MESON_RESULT_MAX_BYTES)
//   to `meson-result.json` in the sandbox; whatever runs the task on the agent sends it back as
//   the terminal TaskStatus's `data`, which is read only from an executor's acknowledged update
//   (uuid and SOURCE_EXECUTOR) and checked again here with the same bounded parser;
// - logs stay in the task's sandbox (stdout/stderr).
//
// Launches on one host in one scheduling pass go out as ONE ACCEPT naming all of the host's
// offers (Mesos spends an offer whole). Noop steps run in-process: they need no offer.
import { randomBytes } from 'node:crypto';
import { truncateMessage } from '../../executors/limits.ts';
import type { ExecutorStatus } from '../../executors/protocol.ts';
import { parameterEnvironment } from '../../executors/safety.ts';
import type { TaskInfo, TaskStateName, TaskStatus } from '../mesos-compat/schemas.ts';
import { MESOS_LIMITS } from '../mesos-compat/schemas.ts';
import { resourcesToMesos } from '../offer-adapter/mesos.ts';
import type { MesosOfferPool } from '../offer-adapter/mesos-pool.ts';
import { callRefused } from '../offer-adapter/mesos-source.ts';
import type { Offer, ResourceRequest } from '../offer-adapter/types.ts';
import { parseEnvelope, remoteTaskFile, TASK_ENV, taskIdOf } from './kubernetes-pod.ts';
import {
  type AttemptKey,
  type AttemptUpdate,
  attemptKey,
  type Launcher,
  type LaunchRecord,
  type LaunchRequest,
} from './types.ts';

/** Where the executor writes its envelope, relative to the task's sandbox. */
export const RESULT_FILE = 'meson-result.json';
/** The executor's work directory inside the sandbox. */
export const SANDBOX_WORK_DIR = 'work';

export const MESOS_LAUNCHER_DEFAULTS = {
  executorCommand: ['meson-executor'],
  /** An environment value of a TaskInfo: what a master (and our endpoint) accepts. */
  maxTaskBytes: MESOS_LIMITS.textChars,
  /** The executor's envelope in TaskStatus.data. */
  maxResultBytes: 64 * 1024,
  messageBytes: 4096,
} as const;

export class MesosLaunchError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MesosLaunchError';
    this.code = code;
  }
}

export interface TaskInfoOptions {
  agentId: string;
  resources: ResourceRequest;
  executorCommand?: readonly string[];
  maxTaskBytes?: number;
  maxResultBytes?: number;
  /** Largest value exported as MESON_PARAM_<name> (default as the executor's). */
  paramEnvMaxBytes?: number;
}

/** The Mesos task id of a launch: unique per launch, so a relaunch never reuses one. */
export function mesosTaskId(launchId: string): string {
  return `meson-${launchId}`;
}

/**
 * The TaskInfo of one launch of an attempt.
 * @throws MesosLaunchError (MESOS_TASK_TOO_LARGE, MESOS_NO_RESOURCES) for a step that cannot go.
 */
export function taskInfoFor(req: LaunchRequest, record: LaunchRecord, opts: TaskInfoOptions): TaskInfo {
  const resources = resourcesToMesos(opts.resources);
  if (resources.length === 0) {
    throw new MesosLaunchError(
      'MESOS_NO_RESOURCES',
      'a Mesos task must use some resources; the step asks none',
    );
  }
  const task = remoteTaskFile(req, record);
  const json = JSON.stringify(task);
  const max = Math.min(opts.maxTaskBytes ?? MESOS_LAUNCHER_DEFAULTS.maxTaskBytes, MESOS_LIMITS.textChars);
  const size = Buffer.byteLength(json);
  if (size > max) {
    throw new MesosLaunchError(
      'MESOS_TASK_TOO_LARGE',
      `the step's task takes ${size} bytes, over the ${max} bytes a Mesos task can receive in ${TASK_ENV}: ` +
        'shorten the script (pass large values as files or artifacts)',
    );
  }
  const command = [...(opts.executorCommand ?? MESOS_LAUNCHER_DEFAULTS.executorCommand)];
  const variables = [
    { name: TASK_ENV, value: json },
    { name: 'MESON_WORK_DIR', value: SANDBOX_WORK_DIR },
    { name: 'MESON_TERMINATION_MESSAGE_PATH', value: RESULT_FILE },
    {
      name: 'MESON_RESULT_MAX_BYTES',
      value: String(opts.maxResultBytes ?? MESOS_LAUNCHER_DEFAULTS.maxResultBytes),
    },
    ...Object.entries(parameterEnvironment(req.step.parameters, opts.paramEnvMaxBytes)).map(
      ([name, value]) => ({ name, value }),
    ),
  ];
  return {
    name: `${req.workflow}/${req.run}/${req.instance}#${req.attempt}`.slice(0, MESOS_LIMITS.nameChars),
    task_id: { value: mesosTaskId(record.launchId) },
    agent_id: { value: opts.agentId },
    resources: resources as TaskInfo['resources'],
    command: {
      shell: false,
      value: command[0]!,
      arguments: command,
      environment: { variables: variables.map((v) => ({ type: 'VALUE' as const, ...v })) },
    },
    labels: {
      labels: [
        { key: 'meson.dev/task', value: taskIdOf(req) },
        { key: 'meson.dev/attempt', value: String(req.attempt) },
        { key: 'meson.dev/launch-id', value: record.launchId },
      ],
    },
  };
}

/** States after which the task is over. */
const FAILED_STATES: ReadonlySet<TaskStateName> = new Set([
  'TASK_FAILED',
  'TASK_KILLED',
  'TASK_ERROR',
  'TASK_LOST',
  'TASK_DROPPED',
  'TASK_GONE',
  'TASK_GONE_BY_OPERATOR',
  'TASK_UNKNOWN',
]);

/** Reasons that say the task never reached an agent: it is placed again, not failed. */
const NEVER_STARTED_REASONS: ReadonlySet<string> = new Set([
  'REASON_INVALID_OFFERS',
  'REASON_RESOURCES_UNKNOWN',
  'REASON_AGENT_REMOVED',
  'REASON_AGENT_UNKNOWN',
]);

export interface UpdateContext {
  key: AttemptKey;
  record: LaunchRecord;
  queuedAt?: number;
  /** The attempt was reported running already (so a repeat is not sent). */
  reportedRunning: boolean;
  now: number;
  maxResultBytes?: number;
  messageBytes?: number;
}

function decodeData(data: string, max: number): { text: string } | { problem: string } {
  // base64 decodes to 3/4 of its length: check before decoding
  if (Math.floor((data.length * 3) / 4) > max + 2) return { problem: `its data is over ${max} bytes` };
  const buf = Buffer.from(data, 'base64');
  if (buf.length > max) return { problem: `its data is over ${max} bytes` };
  const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  try {
    return { text: text.decode(buf) };
  } catch {
    return { problem: 'its data is not UTF-8' };
  }
}

/**
 * What a task status means for its attempt (undefined: nothing to report):
 * - TASK_STAGING, TASK_KILLING, TASK_UNREACHABLE: nothing (the attempt stays launched; an
 *   unreachable agent may come back, and Mesos reports the task's end either way);
 * - TASK_STARTING, TASK_RUNNING: `running` once, with the running milestone;
 * - TASK_FINISHED: `finished` Succeeded with the outputs and links of the executor's envelope
 *   (an invalid or oversized envelope fails the step saying why);
 * - TASK_LOST / TASK_DROPPED / TASK_ERROR ... with a reason saying it never reached an agent
 *   (invalid offers, an agent removed): `lost`, so the controller places it again;
 * - every other terminal state (FAILED, KILLED, ERROR, LOST, DROPPED, GONE, GONE_BY_OPERATOR,
 *   UNKNOWN): `finished` Failed with the state, the reason and the message.
 */
export function updateFor(status: TaskStatus, ctx: UpdateContext): AttemptUpdate | undefined {
  const state = status.state;
  const messageBytes = ctx.messageBytes ?? MESOS_LAUNCHER_DEFAULTS.messageBytes;
  const at = status.timestamp !== undefined ? Math.round(status.timestamp * 1000) : ctx.now;
  const base = (phase: ExecutorStatus['phase']): ExecutorStatus => ({
    launchId: ctx.record.launchId,
    pid: 0,
    phase,
    milestones: {
      ...(ctx.queuedAt !== undefined ? { queued: ctx.queuedAt } : {}),
      launched: ctx.record.launchedAt,
    },
  });
  if (state === 'TASK_STARTING' || state === 'TASK_RUNNING') {
    if (ctx.reportedRunning) return undefined;
    const s = base('Running');
    s.milestones.running = at;
    return { type: 'running', key: ctx.key, status: s };
  }
  // a result is taken only from the executor itself, in an update the agent made reliable
  const fromExecutor = status.source === 'SOURCE_EXECUTOR' && status.uuid !== undefined;
  const said = (text: string | undefined) =>
    text === undefined || text === '' ? undefined : truncateMessage(text, messageBytes);
  if (state === 'TASK_FINISHED') {
    const s = base('Succeeded');
    s.milestones.finished = at;
    s.exitCode = 0;
    if (fromExecutor && status.data !== undefined) {
      const max = ctx.maxResultBytes ?? MESOS_LAUNCHER_DEFAULTS.maxResultBytes;
      const decoded = decodeData(status.data, max);
      try {
        if ('problem' in decoded) throw new Error(decoded.problem);
        const env = parseEnvelope(decoded.text);
        if (env.outputs && Object.keys(env.outputs).length > 0) s.outputs = env.outputs;
        if (env.links && env.links.length > 0) s.links = env.links;
      } catch (err) {
        s.phase = 'Failed';
        delete s.exitCode;
        s.message = said(`MESOS_RESULT_INVALID: the task finished but ${(err as Error).message}`);
      }
    }
    return { type: 'finished', key: ctx.key, status: s };
  }
  if (!FAILED_STATES.has(state)) return undefined;
  if (!ctx.reportedRunning && status.reason !== undefined && NEVER_STARTED_REASONS.has(status.reason)) {
    return {
      type: 'lost',
      key: ctx.key,
      message: said(`the Mesos task never started (${state}, ${status.reason}); placing it again`)!,
    };
  }
  let fromStep: string | undefined;
  if (fromExecutor && status.data !== undefined) {
    const decoded = decodeData(status.data, ctx.maxResultBytes ?? MESOS_LAUNCHER_DEFAULTS.maxResultBytes);
    try {
      if (!('problem' in decoded)) fromStep = parseEnvelope(decoded.text).message;
    } catch {
      // the failure stands; its envelope adds nothing readable
    }
  }
  const s = base('Failed');
  s.milestones.finished = at;
  const head = [state, status.reason].filter(Boolean).join(' ');
  s.message = said([head, fromStep ?? status.message].filter(Boolean).join(': '));
  if (state === 'TASK_KILLED') s.signal = 'SIGTERM';
  return { type: 'finished', key: ctx.key, status: s };
}

export interface MesosLauncherOptions {
  pool: MesosOfferPool;
  onUpdate: (u: AttemptUpdate) => void;
  /** The Mesos host name of a placement's node (the composite source prefixes it). */
  host?: (node: string) => string;
  executorCommand?: readonly string[];
  maxTaskBytes?: number;
  maxResultBytes?: number;
  messageBytes?: number;
  paramEnvMaxBytes?: number;
  /**
   * How long a master's reconciliation answer that the task FINISHED, FAILED or was KILLED waits
   * for the agent's own update, which carries the result (default 30 s). A success whose result
   * never comes fails with MESOS_RESULT_LOST rather than succeeding without its outputs.
   */
  reliableGraceMs?: number;
  /** For records this launcher prepares itself (it is usually a routing launcher's second). */
  newLaunchId?: () => string;
  now?: () => number;
  log?: (msg: string, fields?: object) => void;
}

/** Ends of a task that an agent reports reliably (with a uuid, resent until acknowledged). */
const AGENT_ENDINGS: ReadonlySet<TaskStateName> = new Set(['TASK_FINISHED', 'TASK_FAILED', 'TASK_KILLED']);

/** What a reconciliation answers for a task the master does not know. */
const UNKNOWN_TO_MASTER: ReadonlySet<TaskStateName> = new Set(['TASK_LOST', 'TASK_UNKNOWN', 'TASK_DROPPED']);

interface Watched {
  /**
   * Not known to have reached the master: adopted after a restart (launched by another process),
   * or launched by an ACCEPT whose answer was lost. Reconciliation tells: a master that does not
   * know the task has it placed again.
   */
  unconfirmed?: boolean;
  /** A master's unreliable word of the task's end, waiting for the agent's own update. */
  deferred?: ReturnType<typeof setTimeout> | undefined;
  key: AttemptKey;
  record: LaunchRecord;
  req: LaunchRequest;
  agentId?: string;
  reportedRunning: boolean;
  done: boolean;
}

interface Pending {
  w: Watched;
  taskId: string;
}

export class MesosLauncher implements Launcher {
  private readonly o: MesosLauncherOptions;
  private readonly now: () => number;
  /** Mesos task id -> the attempt. */
  private readonly tasks = new Map<string, Watched>();
  /** Launches waiting for this pass's ACCEPT, per host. */
  private readonly batches = new Map<string, { offers: Offer[]; pending: Pending[] }>();
  private closed = false;
  private readonly reliableGraceMs: number;

  constructor(opts: MesosLauncherOptions) {
    this.o = opts;
    this.now = opts.now ?? Date.now;
    this.reliableGraceMs = opts.reliableGraceMs ?? 30_000;
  }

  /** Tasks to reconcile explicitly after a (re)subscription. */
  knownTasks(): { taskId: string; agentId?: string }[] {
    return [...this.tasks.entries()]
      .filter(([, w]) => !w.done && !w.record.inProcess)
      .map(([taskId, w]) => ({ taskId, ...(w.agentId ? { agentId: w.agentId } : {}) }));
  }

  prepare(req: LaunchRequest): LaunchRecord {
    const launchId = this.o.newLaunchId?.() ?? randomBytes(8).toString('hex');
    const launchedAt = this.now();
    return req.step.type === 'noop' ? { launchId, inProcess: true, launchedAt } : { launchId, launchedAt };
  }

  launch(req: LaunchRequest, record: LaunchRecord): void {
    const w = this.watch(req, record);
    if (record.inProcess || req.step.type === 'noop') {
      this.completeNoop(w);
      return;
    }
    const host = this.o.host ? this.o.host(record.node ?? '') : (record.node ?? '');
    const batch = this.batches.get(host);
    const p: Pending = { w, taskId: mesosTaskId(record.launchId) };
    if (batch) {
      batch.pending.push(p);
      return;
    }
    // spent now, not at the ACCEPT: no later pass may place on them again
    this.batches.set(host, { offers: this.o.pool.take(host), pending: [p] });
    // every launch of this pass is made before any microtask runs: one ACCEPT per host
    queueMicrotask(() => this.flush(host));
  }

  private watch(req: LaunchRequest, record: LaunchRecord): Watched {
    const w: Watched = { key: attemptKey(req), record, req, reportedRunning: false, done: false };
    this.tasks.set(mesosTaskId(record.launchId), w);
    return w;
  }

  private flush(host: string): void {
    const taken = this.batches.get(host);
    this.batches.delete(host);
    const batch = (taken?.pending ?? []).filter((p) => !p.w.done);
    const offers = taken?.offers ?? [];
    if (this.closed) return;
    if (batch.length === 0) {
      // every launch of the batch was killed first: the offers go back to the master
      if (offers.length > 0)
        this.o.pool.client
          .decline(
            offers.map((o) => o.id),
            0,
          )
          .catch(() => {});
      return;
    }
    const agentId = offers[0]?.agentId;
    if (offers.length === 0 || agentId === undefined) {
      for (const p of batch)
        this.lost(p.w, `the Mesos offers of ${host} were gone before the launch; placing it again`);
      return;
    }
    const infos: TaskInfo[] = [];
    for (const p of batch) {
      const granted = this.o.pool.granted(taskIdOf(p.w.key)) ?? p.w.req.resources;
      try {
        if (!granted) throw new MesosLaunchError('MESOS_NO_RESOURCES', 'the placement granted no resources');
        infos.push(
          taskInfoFor(p.w.req, p.w.record, {
            agentId,
            resources: granted,
            ...(this.o.executorCommand ? { executorCommand: this.o.executorCommand } : {}),
            ...(this.o.maxTaskBytes !== undefined ? { maxTaskBytes: this.o.maxTaskBytes } : {}),
            ...(this.o.maxResultBytes !== undefined ? { maxResultBytes: this.o.maxResultBytes } : {}),
            ...(this.o.paramEnvMaxBytes !== undefined ? { paramEnvMaxBytes: this.o.paramEnvMaxBytes } : {}),
          }),
        );
        p.w.agentId = agentId;
      } catch (err) {
        const code = err instanceof MesosLaunchError ? `${err.code}: ` : '';
        this.fail(p.w, `${code}${(err as Error).message}`);
      }
    }
    const offerIds = offers.map((o) => o.id);
    // refuse 0: what the tasks leave of the offers comes back at the master's next round
    this.o.pool.client.accept(offerIds, infos, 0).catch((err: unknown) => {
      const refused = callRefused(err);
      this.o.log?.('mesos ACCEPT failed', {
        error: (err as Error).message,
        offers: offerIds,
        outcome: refused ? 'refused: placing again' : 'unknown: reconciling',
      });
      const watched = infos.flatMap((info) => this.tasks.get(info.task_id.value) ?? []);
      if (refused) {
        // the master refused the call (nothing launched): place them again
        for (const w of watched)
          this.lost(w, `the Mesos master refused the launch (${(err as Error).message}); placing it again`);
        return;
      }
      // No answer (a cut connection, a timeout): the master may have launched them. Placing
      // them again could run a step twice, so ask the master instead. A task it does not know
      // is placed again (onStatus); one it knows goes on. Should this call fail too, the next
      // subscription reconciles every known task.
      for (const w of watched) w.unconfirmed = true;
      this.o.pool.client
        .reconcile(
          watched.map((w) => ({
            taskId: mesosTaskId(w.record.launchId),
            ...(w.agentId ? { agentId: w.agentId } : {}),
          })),
        )
        .catch(() => {});
    });
  }

  /** A task status update from the master (MesosMasterSource's onUpdate). */
  onStatus(status: TaskStatus): void {
    const w = this.tasks.get(status.task_id.value);
    if (!w || w.done || this.closed) return;
    if (status.agent_id) w.agentId = status.agent_id.value;
    if (status.uuid === undefined && AGENT_ENDINGS.has(status.state)) {
      // The master's word (a reconciliation answer) that the task ended: the agent's own update,
      // which carries the result, is on its way (it is resent until acknowledged). Wait for it.
      if (!w.deferred) {
        w.deferred = setTimeout(() => this.settleUnreliable(w, status), this.reliableGraceMs);
        w.deferred.unref?.();
      }
      return;
    }
    if (w.deferred) clearTimeout(w.deferred);
    w.deferred = undefined;
    if (
      w.unconfirmed &&
      !w.reportedRunning &&
      status.reason === 'REASON_RECONCILIATION' &&
      UNKNOWN_TO_MASTER.has(status.state)
    ) {
      // launched by a server that stopped before its ACCEPT went out, an ACCEPT lost on the way
      // (or a task the master has forgotten): it never ran that we know of. Fence the id with a
      // KILL, then place it again.
      const id = mesosTaskId(w.record.launchId);
      this.o.pool.client.kill(id, w.agentId).catch(() => {});
      this.lost(w, `the Mesos master does not know the task (${status.state}); placing it again`);
      return;
    }
    this.apply(w, status);
  }

  /** The agent's update never came: the master's answer stands, but a success lost its result. */
  private settleUnreliable(w: Watched, status: TaskStatus): void {
    w.deferred = undefined;
    if (w.done || this.closed) return;
    if (status.state !== 'TASK_FINISHED') {
      this.apply(w, status);
      return;
    }
    this.fail(
      w,
      `MESOS_RESULT_LOST: the master says the task finished, but the agent's update with its result did not come within ${this.reliableGraceMs} ms`,
    );
  }

  private apply(w: Watched, status: TaskStatus): void {
    const u = updateFor(status, {
      key: w.key,
      record: w.record,
      ...(w.req.queuedAt !== undefined ? { queuedAt: w.req.queuedAt } : {}),
      reportedRunning: w.reportedRunning,
      now: this.now(),
      ...(this.o.maxResultBytes !== undefined ? { maxResultBytes: this.o.maxResultBytes } : {}),
      ...(this.o.messageBytes !== undefined ? { messageBytes: this.o.messageBytes } : {}),
    });
    if (!u) return;
    if (u.type === 'running') w.reportedRunning = true;
    else this.end(w);
    this.o.onUpdate(u);
  }

  adopt(key: AttemptKey, record: LaunchRecord, req: LaunchRequest): void {
    const id = mesosTaskId(record.launchId);
    if (this.tasks.has(id)) return;
    const w = this.watch(req, record);
    w.key = attemptKey(key);
    w.unconfirmed = true;
    // an in-process noop does not survive its server: complete it again; a task is reconciled
    // after the next subscription (knownTasks), and its updates come back through onStatus
    if (record.inProcess) this.completeNoop(w);
  }

  kill(key: AttemptKey, record: LaunchRecord): void {
    const id = mesosTaskId(record.launchId);
    const w = this.tasks.get(id);
    if (!w || w.done) return;
    for (const batch of this.batches.values()) {
      const i = batch.pending.findIndex((p) => p.w === w);
      if (i >= 0) {
        batch.pending.splice(i, 1);
        this.fail(w, 'killed before it was launched');
        return;
      }
    }
    this.o.pool.client.kill(id, w.agentId).catch((err: unknown) => {
      this.o.log?.('mesos KILL failed', { error: (err as Error).message, task: id, attempt: key });
    });
  }

  close(): void {
    this.closed = true;
    this.batches.clear();
    for (const w of this.tasks.values()) if (w.deferred) clearTimeout(w.deferred);
  }

  private completeNoop(w: Watched): void {
    queueMicrotask(() => {
      if (w.done || this.closed) return;
      const t = this.now();
      this.end(w);
      this.o.onUpdate({
        type: 'finished',
        key: w.key,
        status: {
          launchId: w.record.launchId,
          pid: 0,
          phase: 'Succeeded',
          exitCode: 0,
          milestones: {
            ...(w.req.queuedAt !== undefined ? { queued: w.req.queuedAt } : {}),
            launched: w.record.launchedAt,
            running: t,
            finished: t,
          },
        },
      });
    });
  }

  private end(w: Watched): void {
    w.done = true;
    if (w.deferred) clearTimeout(w.deferred);
    this.tasks.delete(mesosTaskId(w.record.launchId));
  }

  private lost(w: Watched, message: string): void {
    if (w.done) return;
    this.end(w);
    this.o.onUpdate({ type: 'lost', key: w.key, message });
  }

  private fail(w: Watched, message: string): void {
    if (w.done) return;
    this.end(w);
    const t = this.now();
    this.o.onUpdate({
      type: 'finished',
      key: w.key,
      status: {
        launchId: w.record.launchId,
        pid: 0,
        phase: 'Failed',
        message: truncateMessage(message, this.o.messageBytes ?? MESOS_LAUNCHER_DEFAULTS.messageBytes),
        milestones: { launched: w.record.launchedAt, finished: t },
      },
    });
  }
}
