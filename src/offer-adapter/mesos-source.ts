/**
 * A Mesos master as an offer source: a v1 scheduler HTTP client. It subscribes with a failover
 * timeout (the framework id is kept in an injected store, so a restart resubscribes as the same
 * framework), follows a non-leader's 307 (protocol-relative Location), treats a stream silent for
 * `heartbeatMissFactor` heartbeat intervals as dead and resubscribes with exponential backoff,
 * acknowledges exactly the updates that carry a uuid, and reconciles after every subscription.
 * src/offer-adapter/mesos-pool.ts feeds its offers to the controller (see docs/mesos.md).
 */
import { decodeJsonRecord, RecordIoDecoder } from '../mesos-compat/recordio.ts';
import {
  describeIssues,
  Event,
  type FrameworkInfo,
  type TaskInfo,
  type TaskStatus,
} from '../mesos-compat/schemas.ts';
import { type MesosOffer, offerFromMesos } from './mesos.ts';
import type { Offer } from './types.ts';

export interface FrameworkIdStore {
  load(): Promise<string | undefined>;
  save(id: string): Promise<void>;
}

export interface MesosSourceOptions {
  /** http://host:port of a master (any master: a non-leader redirects). */
  master: string;
  /** Its `id` is ignored: the id comes from the store or the master. */
  frameworkInfo: FrameworkInfo & { failover_timeout: number };
  store: FrameworkIdStore;
  /** Task updates as they arrive (before acknowledgement). */
  onUpdate?: (status: TaskStatus) => void;
  /** The outstanding offers changed (OFFERS, RESCIND, or forgotten on resubscription). */
  onOffers?: () => void;
  /** A subscription (or resubscription) succeeded: the master knows nothing of an earlier SUPPRESS. */
  onSubscribed?: () => void;
  /** Tasks to reconcile explicitly after each subscription (an implicit reconcile follows). */
  knownTasks?: () => { taskId: string; agentId?: string }[];
  /**
   * Reconcile (explicitly, then implicitly) this often while subscribed, besides after every
   * subscription: an update lost on the way is found out (default 15 min; 0: never).
   */
  reconcileIntervalMs?: number;
  /** A stream silent for this many heartbeat intervals is dead (default 5, as Mesos advises). */
  heartbeatMissFactor?: number;
  backoffInitialMs?: number;
  /** Backoff cap (default 15 s). */
  backoffMaxMs?: number;
  maxRedirects?: number;
  /** Timeout of a non-SUBSCRIBE call (default 75 s, as Mesos advises). */
  callTimeoutMs?: number;
  maxRecordBytes?: number;
  fetch?: typeof fetch;
  now?: () => number;
  log?: (msg: string, fields?: object) => void;
}

export class MesosSourceError extends Error {
  readonly code: string;
  /** The master's HTTP status, when it answered (MESOS_CALL_FAILED). */
  readonly status: number | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; status?: number }) {
    super(message, options);
    this.name = 'MesosSourceError';
    this.code = code;
    this.status = options?.status;
  }
}

/**
 * True when a call certainly did nothing: it was never sent (not subscribed) or the master
 * answered 4xx. Any other failure (no answer, a reset connection, a timeout, a 5xx from a proxy)
 * leaves the outcome unknown: the master may have acted on it.
 */
export function callRefused(err: unknown): boolean {
  if (!(err instanceof MesosSourceError)) return false;
  if (err.code === 'MESOS_NOT_SUBSCRIBED') return true;
  return (
    err.code === 'MESOS_CALL_FAILED' && err.status !== undefined && err.status >= 400 && err.status < 500
  );
}

export class MesosMasterSource {
  readonly #o: Required<
    Omit<
      MesosSourceOptions,
      'onUpdate' | 'onOffers' | 'onSubscribed' | 'knownTasks' | 'log' | 'maxRecordBytes'
    >
  > &
    Pick<
      MesosSourceOptions,
      'onUpdate' | 'onOffers' | 'onSubscribed' | 'knownTasks' | 'log' | 'maxRecordBytes'
    >;
  #base: URL;
  #frameworkId: string | undefined;
  /** The stored id named a framework the master removed: subscribe as a new one, not as it. */
  #forgotten = false;
  #streamId: string | undefined;
  #offers = new Map<string, Offer>();
  #stopped = true;
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  /** Ends the backoff wait at once (stop). */
  #wake: (() => void) | undefined;
  /** Subscriptions made (for tests and metrics). */
  subscriptions = 0;
  acknowledged: string[] = [];

  constructor(opts: MesosSourceOptions) {
    this.#o = {
      heartbeatMissFactor: 5,
      reconcileIntervalMs: 15 * 60_000,
      backoffInitialMs: 100,
      backoffMaxMs: 15_000,
      maxRedirects: 9,
      callTimeoutMs: 75_000,
      fetch: globalThis.fetch,
      now: Date.now,
      ...opts,
    };
    this.#base = new URL(opts.master);
  }

  get frameworkId(): string | undefined {
    return this.#frameworkId;
  }

  get connected(): boolean {
    return this.#streamId !== undefined;
  }

  /** Outstanding offers in the project's offer model. */
  offers(): Offer[] {
    return [...this.#offers.values()];
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort?.abort();
    // a process stepping down does not wait out a backoff of up to backoffMaxMs
    this.#wake?.();
    await this.#loop;
  }

  /** Drops the current stream (as a network failure would); the loop resubscribes. */
  dropConnection(): void {
    this.#abort?.abort();
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        await this.#subscribeOnce(() => {
          failures = 0;
        });
      } catch (err) {
        if (this.#stopped) break;
        this.#o.log?.('mesos subscription lost', { error: (err as Error).message });
      }
      this.#streamId = undefined;
      // Offers do not survive a resubscription.
      if (this.#offers.size > 0) {
        this.#offers.clear();
        this.#o.onOffers?.();
      }
      if (this.#stopped) break;
      const delay = Math.min(this.#o.backoffMaxMs, this.#o.backoffInitialMs * 2 ** failures);
      failures++;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay * (0.5 + Math.random() / 2));
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  async #subscribeOnce(onSubscribed: () => void): Promise<void> {
    if (!this.#forgotten) this.#frameworkId ??= await this.#o.store.load();
    const { id: _ignored, ...rest } = this.#o.frameworkInfo;
    const info: FrameworkInfo = { ...rest, user: rest.user, name: rest.name };
    const body: Record<string, unknown> = { type: 'SUBSCRIBE', subscribe: { framework_info: info } };
    if (this.#frameworkId) {
      info.id = { value: this.#frameworkId };
      body.framework_id = { value: this.#frameworkId };
    }
    const abort = new AbortController();
    this.#abort = abort;
    let res: Response | undefined;
    for (let hop = 0; ; hop++) {
      res = await this.#o.fetch(new URL('/api/v1/scheduler', this.#base), {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        redirect: 'manual',
        signal: abort.signal,
      });
      if (res.status !== 307) break;
      await res.body?.cancel();
      const location = res.headers.get('location');
      if (!location || hop >= this.#o.maxRedirects) {
        throw new MesosSourceError(
          'MESOS_REDIRECT',
          `bad or too many redirects (${location ?? 'no Location'})`,
        );
      }
      // Protocol-relative: keep our scheme, take the leader's host (its path is ours anyway).
      const leader = new URL(location, this.#base);
      this.#base = new URL(`${this.#base.protocol}//${leader.host}`);
    }
    this.subscriptions++;
    if (res.status !== 200 || !res.body) {
      const text = (await res.text()).slice(0, 500);
      if (res.status === 403) this.#forgetIfRemoved(text);
      throw new MesosSourceError('MESOS_SUBSCRIBE_FAILED', `SUBSCRIBE answered ${res.status}: ${text}`);
    }
    const streamId = res.headers.get('mesos-stream-id');
    if (!streamId)
      throw new MesosSourceError('MESOS_NO_STREAM_ID', 'SUBSCRIBE answered without Mesos-Stream-Id');

    const decoder = new RecordIoDecoder(
      this.#o.maxRecordBytes === undefined ? {} : { maxRecordBytes: this.#o.maxRecordBytes },
    );
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    let reconciler: ReturnType<typeof setInterval> | undefined;
    let silenceMs = 15_000 * this.#o.heartbeatMissFactor;
    const arm = () => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(
        () => abort.abort(new MesosSourceError('MESOS_HEARTBEAT_MISSED', 'no heartbeat')),
        silenceMs,
      );
    };
    arm();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        arm();
        for (const record of decoder.push(chunk)) {
          const parsed = Event.safeParse(decodeJsonRecord(record));
          if (!parsed.success) {
            this.#o.log?.('mesos event ignored', { error: describeIssues(parsed.error, 'event') });
            continue;
          }
          const ev = parsed.data;
          switch (ev.type) {
            case 'SUBSCRIBED': {
              this.#frameworkId = ev.subscribed.framework_id.value;
              this.#forgotten = false;
              this.#streamId = streamId;
              await this.#o.store.save(this.#frameworkId);
              silenceMs =
                (ev.subscribed.heartbeat_interval_seconds ?? 15) * 1000 * this.#o.heartbeatMissFactor;
              arm();
              onSubscribed();
              this.#o.onSubscribed?.();
              void this.#reconcile().catch(() => {});
              if (this.#o.reconcileIntervalMs > 0 && !reconciler) {
                reconciler = setInterval(
                  () => void this.#reconcile().catch(() => {}),
                  this.#o.reconcileIntervalMs,
                );
                reconciler.unref();
              }
              break;
            }
            case 'OFFERS':
              for (const o of ev.offers.offers) {
                this.#offers.set(o.id.value, offerFromMesos(o as MesosOffer, { receivedAt: this.#o.now() }));
              }
              this.#o.onOffers?.();
              break;
            case 'RESCIND':
              if (this.#offers.delete(ev.rescind.offer_id.value)) this.#o.onOffers?.();
              break;
            case 'UPDATE': {
              const st = ev.update.status;
              this.#o.onUpdate?.(st);
              // Only updates with a uuid are acknowledged; master-generated ones must not be.
              if (st.uuid !== undefined && st.agent_id !== undefined) {
                await this.#call({
                  type: 'ACKNOWLEDGE',
                  acknowledge: { agent_id: st.agent_id, task_id: st.task_id, uuid: st.uuid },
                });
                this.acknowledged.push(st.uuid);
              }
              break;
            }
            case 'ERROR':
              // before SUBSCRIBED, a master refusing our id says so here
              if (this.#streamId === undefined) this.#forgetIfRemoved(ev.error.message);
              throw new MesosSourceError('MESOS_ERROR_EVENT', `master sent ERROR: ${ev.error.message}`);
            default:
              break;
          }
        }
      }
      decoder.end();
      throw new MesosSourceError('MESOS_STREAM_ENDED', 'event stream ended');
    } finally {
      if (watchdog) clearTimeout(watchdog);
      if (reconciler) clearInterval(reconciler);
    }
  }

  /**
   * The master removed our framework (its failover timeout passed: it killed the tasks): that id
   * can never subscribe again, so the next SUBSCRIBE registers a new framework, whose id replaces
   * the stored one. Only this refusal does: any other 403 (a role we may not use) keeps the id.
   */
  #forgetIfRemoved(message: string): void {
    if (!this.#frameworkId || !/\bhas been removed\b/i.test(message)) return;
    this.#o.log?.('mesos framework was removed by the master: subscribing as a new framework', {
      frameworkId: this.#frameworkId,
      reason: message.slice(0, 200),
    });
    this.#frameworkId = undefined;
    this.#forgotten = true;
  }

  /** Asks the master for these tasks' states now (explicit reconciliation; answers come as UPDATEs). */
  async reconcile(tasks: { taskId: string; agentId?: string }[]): Promise<void> {
    if (tasks.length === 0) return;
    await this.#call({
      type: 'RECONCILE',
      reconcile: {
        tasks: tasks.map((t) => ({
          task_id: { value: t.taskId },
          ...(t.agentId ? { agent_id: { value: t.agentId } } : {}),
        })),
      },
    });
  }

  async #reconcile(): Promise<void> {
    await this.reconcile(this.#o.knownTasks?.() ?? []);
    await this.#call({ type: 'RECONCILE', reconcile: { tasks: [] } });
  }

  /** Posts a call; a 403 means the subscription is gone, so the stream is dropped to resubscribe. */
  async #call(call: Record<string, unknown>): Promise<void> {
    if (!this.#frameworkId || !this.#streamId) {
      throw new MesosSourceError('MESOS_NOT_SUBSCRIBED', 'not subscribed to a Mesos master');
    }
    const res = await this.#o.fetch(new URL('/api/v1/scheduler', this.#base), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'mesos-stream-id': this.#streamId },
      body: JSON.stringify({ ...call, framework_id: { value: this.#frameworkId } }),
      signal: AbortSignal.timeout(this.#o.callTimeoutMs),
    });
    const text = await res.text();
    if (res.status === 202 || res.status === 200) return;
    if (res.status === 403) this.dropConnection();
    throw new MesosSourceError(
      'MESOS_CALL_FAILED',
      `${String(call.type)} answered ${res.status}: ${text.slice(0, 500)}`,
      { status: res.status },
    );
  }

  /** Launches tasks on offers (all on one agent); the offers are spent either way. */
  async accept(offerIds: string[], tasks: TaskInfo[], refuseSeconds?: number): Promise<void> {
    for (const id of offerIds) this.#offers.delete(id);
    await this.#call({
      type: 'ACCEPT',
      accept: {
        offer_ids: offerIds.map((value) => ({ value })),
        operations: [{ type: 'LAUNCH', launch: { task_infos: tasks } }],
        ...(refuseSeconds === undefined ? {} : { filters: { refuse_seconds: refuseSeconds } }),
      },
    });
  }

  async decline(offerIds: string[], refuseSeconds: number): Promise<void> {
    for (const id of offerIds) this.#offers.delete(id);
    await this.#call({
      type: 'DECLINE',
      decline: {
        offer_ids: offerIds.map((value) => ({ value })),
        filters: { refuse_seconds: refuseSeconds },
      },
    });
  }

  /** Call when the queue fills (more work than offers). */
  revive(): Promise<void> {
    return this.#call({ type: 'REVIVE' });
  }

  /** Call when the queue empties, so the master stops sending offers we would only decline. */
  suppress(): Promise<void> {
    return this.#call({ type: 'SUPPRESS' });
  }

  kill(taskId: string, agentId?: string): Promise<void> {
    return this.#call({
      type: 'KILL',
      kill: { task_id: { value: taskId }, ...(agentId ? { agent_id: { value: agentId } } : {}) },
    });
  }
}
