// Durable webhook deliveries: at least once, across restarts. Each delivery is written to the
// store (a state entry `notify/pending/<id>`) BEFORE its first attempt, rewritten with its next
// attempt time after a retryable failure, and deleted once delivered or given up. A server that
// starts resumes what the previous one left pending. Bounded: at most `maxPending` deliveries
// wait (a full queue drops new notifications, logged), each gets at most `retry.maxAttempts`
// attempts.
//
// The store is the port (src/store/port.ts), so operator mode keeps its deliveries the same way
// (state ConfigMaps in the operator's namespace): every write is an awaited commit, and a
// delivery's first attempt is scheduled only once its commit resolved.
import { createHash } from 'node:crypto';
import type { AsyncStore } from '../store/port.ts';
import { asyncStoreOf } from '../store/sqlite-async.ts';
import type { Store } from '../store/types.ts';
import type { RunNotification } from './summary.ts';
import {
  attemptDelivery,
  backoffDelay,
  DEFAULT_RETRY,
  type NotificationConfig,
  type NotifyLogger,
  type RetryPolicy,
  redactUrl,
  type WebhookDeps,
  type WebhookTarget,
} from './webhook.ts';

export const PENDING_PREFIX = 'notify/pending/';
export const DEFAULT_MAX_PENDING = 1000;

export interface PendingDelivery {
  id: string;
  target: WebhookTarget;
  headers: Record<string, string>;
  body: string;
  /** Attempts made so far. */
  attempts: number;
  /** Epoch ms of the next attempt. */
  nextAttemptAt: number;
  createdAt: number;
  /** Log fields (run, workflow, event). */
  about: Record<string, string>;
}

/** How one delivery went: its final outcome, a failed attempt to be retried, or not queued. */
export type DeliveryOutcome = 'delivered' | 'failed' | 'retried' | 'dropped';

/** What the queue reports as it works (Prometheus metrics: src/metrics); must not throw. */
export interface DeliveryObserver {
  /**
   * `delivered`/`failed` (given up): the delivery ended, `seconds` after it was queued;
   * `retried`: an attempt failed and another is scheduled; `dropped`: never queued (the queue
   * was full, or its store write failed). `attemptSeconds`: the HTTP attempt's own duration.
   */
  delivery(outcome: DeliveryOutcome, timing: { seconds?: number; attemptSeconds?: number }): void;
  /** Deliveries this queue holds (waiting or being attempted), after every change. */
  pending(count: number): void;
}

export interface WebhookQueueDeps extends Omit<WebhookDeps, 'logger' | 'sleep'> {
  /** The store port; a synchronous store is wrapped (the standalone controller still holds one). */
  store: AsyncStore | Store;
  logger: NotifyLogger;
  now?: () => number;
  /** Deliveries waiting at most (default 1000). */
  maxPending?: number;
  observer?: DeliveryObserver;
}

export class WebhookQueue {
  private readonly deps: WebhookQueueDeps;
  private readonly store: AsyncStore;
  private readonly now: () => number;
  private readonly policy: RetryPolicy;
  private readonly pending = new Map<string, PendingDelivery>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inflight = new Map<string, Promise<void>>();
  private readonly committing = new Set<Promise<number>>();
  private stopped = false;

  constructor(deps: WebhookQueueDeps) {
    this.deps = deps;
    this.store = asyncStoreOf(deps.store);
    this.now = deps.now ?? Date.now;
    this.policy = { ...DEFAULT_RETRY, ...deps.retry };
  }

  /** Resumes the deliveries a previous server left pending. */
  start(): void {
    const left = this.store.listState<PendingDelivery>(PENDING_PREFIX);
    for (const { value } of left) {
      this.pending.set(value.id, value);
      this.schedule(value);
    }
    this.changed();
    if (left.length > 0)
      this.deps.logger.info({ pending: left.length }, 'resuming pending webhook deliveries');
  }

  /** Stops attempting; what is pending stays in the store for the next start. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    // what is left is the next start's (or the next leader's), no longer this queue's
    this.deps.observer?.pending(0);
  }

  private changed(): void {
    if (!this.stopped) this.deps.observer?.pending(this.pending.size);
  }

  private report(outcome: DeliveryOutcome, timing: { seconds?: number; attemptSeconds?: number } = {}): void {
    try {
      this.deps.observer?.delivery(outcome, timing);
    } catch {
      // an observer never fails a delivery
    }
  }

  get size(): number {
    return this.pending.size;
  }

  /** Resolves when no commit or attempt is running, nor an attempt due within `withinMs` (tests). */
  async idle(withinMs = 0): Promise<void> {
    for (;;) {
      if (this.inflight.size > 0 || this.committing.size > 0) {
        await Promise.all([...this.inflight.values(), ...this.committing]);
        continue;
      }
      const due = [...this.pending.values()].some((p) => p.nextAttemptAt <= this.now() + withinMs);
      if (!due || this.timers.size === 0) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /**
   * Persists one delivery per webhook subscribed to the notification's event (one commit),
   * then attempts them. Resolves with how many were queued; never rejects (a store failure is
   * logged: the notification is lost, not the run).
   */
  enqueue(
    notifications: readonly NotificationConfig[] | undefined,
    notification: RunNotification,
    about: Record<string, string> = {},
  ): Promise<number> {
    const queued: PendingDelivery[] = [];
    try {
      const targets = (notifications ?? []).filter((n) => n.on.includes(notification.event));
      const body = JSON.stringify(notification);
      targets.forEach((n, index) => {
        const id = createHash('sha256')
          .update(JSON.stringify([notification.deliveryId, index, n.webhook.url]))
          .digest('hex')
          .slice(0, 32);
        if (this.pending.has(id)) return; // the same delivery is already pending
        const url = redactUrl(n.webhook.url);
        if (this.pending.size >= (this.deps.maxPending ?? DEFAULT_MAX_PENDING)) {
          this.deps.logger.error(
            { ...about, url, pending: this.pending.size },
            'webhook queue full (MESON_WEBHOOK_MAX_PENDING): notification dropped',
          );
          this.report('dropped');
          return;
        }
        const now = this.now();
        const delivery: PendingDelivery = {
          id,
          target: n.webhook,
          headers: {
            'x-meson-event': notification.event,
            'x-meson-delivery': notification.deliveryId,
            'idempotency-key': notification.deliveryId,
          },
          body,
          attempts: 0,
          nextAttemptAt: now,
          createdAt: now,
          about,
        };
        this.pending.set(id, delivery);
        queued.push(delivery);
      });
    } catch (err) {
      this.deps.logger.error({ ...about, err: String(err) }, 'notification not queued');
    }
    if (queued.length === 0) return Promise.resolve(0);
    this.changed();
    // durable before the first attempt
    const commit = this.store
      .transaction((w) => {
        for (const d of queued) w.setState(PENDING_PREFIX + d.id, d);
      })
      .then(
        () => {
          for (const d of queued) this.schedule(d);
          return queued.length;
        },
        (err: unknown) => {
          for (const d of queued) {
            this.pending.delete(d.id);
            this.report('dropped');
          }
          this.changed();
          this.deps.logger.error({ ...about, err: String(err) }, 'notification not queued');
          return 0;
        },
      );
    this.committing.add(commit);
    void commit.finally(() => this.committing.delete(commit));
    return commit;
  }

  private schedule(d: PendingDelivery): void {
    if (this.stopped) return;
    const old = this.timers.get(d.id);
    if (old) clearTimeout(old);
    const t = setTimeout(
      () => {
        this.timers.delete(d.id);
        const p = this.attempt(d).finally(() => this.inflight.delete(d.id));
        this.inflight.set(d.id, p);
      },
      Math.max(0, d.nextAttemptAt - this.now()),
    );
    t.unref();
    this.timers.set(d.id, t);
  }

  private async attempt(d: PendingDelivery): Promise<void> {
    const log = this.deps.logger;
    const url = redactUrl(d.target.url);
    const began = performance.now();
    const out = await attemptDelivery(d.target, d.body, { ...this.deps, logger: log }, d.headers);
    if (this.stopped) return; // the store may be closed: the delivery stays pending for the next start
    const attempts = d.attempts + 1;
    const attemptSeconds = (performance.now() - began) / 1000;
    const seconds = Math.max(0, this.now() - d.createdAt) / 1000;
    const giveUp = out.kind !== 'ok' && (!out.retryable || attempts >= this.policy.maxAttempts);
    this.report(out.kind === 'ok' ? 'delivered' : giveUp ? 'failed' : 'retried', {
      attemptSeconds,
      ...(out.kind === 'ok' || giveUp ? { seconds } : {}),
    });
    try {
      if (out.kind === 'ok') {
        await this.forget(d);
        log.info({ ...d.about, url, status: out.status, attempt: attempts }, 'webhook delivered');
        return;
      }
      if (giveUp) {
        await this.forget(d);
        log.error(
          {
            ...d.about,
            url,
            attempts,
            status: out.status,
            error: out.error,
            ...(out.code ? { code: out.code } : {}),
          },
          'webhook delivery failed; giving up (the run is not affected)',
        );
        return;
      }
      const delay = Math.min(
        this.policy.maxDelayMs,
        Math.max(backoffDelay(this.policy, attempts), out.waitMs ?? 0),
      );
      const next: PendingDelivery = { ...d, attempts, nextAttemptAt: this.now() + delay };
      await this.store.transaction((w) => w.setState(PENDING_PREFIX + d.id, next));
      if (this.stopped) return;
      this.pending.set(d.id, next);
      log.warn(
        { ...d.about, url, attempt: attempts, error: out.error, retryInMs: delay },
        'webhook attempt failed; retrying',
      );
      this.schedule(next);
    } catch (err) {
      log.error({ ...d.about, url, err: String(err) }, 'cannot record the webhook delivery');
    }
  }

  private async forget(d: PendingDelivery): Promise<void> {
    await this.store.transaction((w) => w.deleteState(PENDING_PREFIX + d.id));
    this.pending.delete(d.id);
    this.changed();
  }
}
