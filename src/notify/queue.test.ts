import { afterEach, describe, expect, it } from 'vitest';
import { type TestHook, hook as testHook } from '../../test/notify/hook.ts';
import type { WorkflowRun } from '../crds/index.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { parseAllowList } from './address.ts';
import { type DeliveryObserver, PENDING_PREFIX, type PendingDelivery, WebhookQueue } from './queue.ts';
import { buildRunNotification } from './summary.ts';
import type { NotifyLogger, Transport } from './webhook.ts';

const hooks: TestHook[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) c();
  await Promise.all(hooks.splice(0).map((h) => h.close()));
});

const allow = parseAllowList('127.0.0.1');

/** A real hook on 127.0.0.1 answering `status()` to each request, closed after the test. */
async function hook(status: () => number) {
  const h = await testHook(status);
  hooks.push(h);
  return h;
}

function logger() {
  const lines: { level: string; msg?: string; obj: object }[] = [];
  const l: NotifyLogger = {
    info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => lines.push({ level: 'error', obj, msg }),
  };
  return { l, lines };
}

const run: WorkflowRun = {
  apiVersion: 'meson.dev/v1alpha1',
  kind: 'WorkflowRun',
  metadata: { name: 'r1', namespace: 'ns' },
  spec: { workflow: 'w' },
  status: { phase: 'Failed' },
};
const notification = buildRunNotification(run, 'failure');

function memoryStore() {
  const store = new SqliteStore({ dir: ':memory:' });
  cleanups.push(() => store.close());
  return store;
}

describe('WebhookQueue: durable, bounded deliveries', () => {
  it('persists a delivery before its first attempt and deletes it once delivered', async () => {
    const store = memoryStore();
    let release: () => void = () => {};
    const seen: string[] = [];
    const transport: Transport = (req) => {
      seen.push(req.headers['x-meson-delivery']!);
      // what the store holds while the first attempt is in flight
      expect(store.listState(PENDING_PREFIX)).toHaveLength(1);
      return new Promise((resolve) => {
        release = () => resolve({ status: 200 });
      });
    };
    const q = new WebhookQueue({ store, logger: logger().l, allow, transport });
    q.start();
    cleanups.push(() => q.stop());
    expect(
      await q.enqueue([{ on: ['failure'], webhook: { url: 'http://127.0.0.1:1/h' } }], notification),
    ).toBe(1);
    expect(store.listState<PendingDelivery>(PENDING_PREFIX)[0]!.value).toMatchObject({
      attempts: 0,
      target: { url: 'http://127.0.0.1:1/h' },
    });
    while (seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    release();
    await q.idle();
    expect(seen).toEqual(['ns/r1/failure']);
    expect(store.listState(PENDING_PREFIX)).toEqual([]);
  });

  it('resumes pending deliveries after a restart (at least once) against a real hook', async () => {
    let answer = 503;
    const h = await hook(() => answer);
    const store = memoryStore();
    const first = new WebhookQueue({
      store,
      logger: logger().l,
      allow,
      retry: { initialDelayMs: 60_000 }, // the next attempt would be in a minute...
    });
    first.start();
    await first.enqueue([{ on: ['failure'], webhook: { url: h.url } }], notification, { run: 'ns/r1' });
    await first.idle();
    first.stop(); // ...but the server stops first
    const left = store.listState<PendingDelivery>(PENDING_PREFIX);
    expect(left).toHaveLength(1);
    expect(left[0]!.value).toMatchObject({ attempts: 1, about: { run: 'ns/r1' } });
    expect(h.bodies).toHaveLength(1);

    answer = 200;
    const { l, lines } = logger();
    // the next server starts after the delay: the delivery is due and goes out
    const second = new WebhookQueue({ store, logger: l, allow, now: () => Date.now() + 61_000 });
    second.start();
    cleanups.push(() => second.stop());
    await second.idle();
    expect(h.bodies).toHaveLength(2);
    expect(h.bodies[1]).toMatchObject({ deliveryId: 'ns/r1/failure' });
    expect(store.listState(PENDING_PREFIX)).toEqual([]);
    expect(lines.find((x) => x.msg === 'webhook delivered')?.obj).toMatchObject({ run: 'ns/r1', attempt: 2 });
  });

  it('gives up after maxAttempts and forgets the delivery', async () => {
    const h = await hook(() => 500);
    const store = memoryStore();
    const { l, lines } = logger();
    const q = new WebhookQueue({ store, logger: l, allow, retry: { maxAttempts: 3, initialDelayMs: 1 } });
    q.start();
    cleanups.push(() => q.stop());
    await q.enqueue([{ on: ['failure'], webhook: { url: h.url } }], notification);
    for (let i = 0; i < 200 && store.listState(PENDING_PREFIX).length > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    await q.idle();
    expect(h.bodies).toHaveLength(3);
    expect(store.listState(PENDING_PREFIX)).toEqual([]);
    expect(lines.at(-1)).toMatchObject({ level: 'error', obj: { attempts: 3 } });
  });

  it('a denied target is given up at once, and a full queue drops new deliveries (logged)', async () => {
    const store = memoryStore();
    const { l, lines } = logger();
    const never: Transport = () => new Promise(() => {});
    const q = new WebhookQueue({ store, logger: l, allow, transport: never, maxPending: 2 });
    cleanups.push(() => q.stop());
    const targets = ['http://127.0.0.1:1/a', 'http://127.0.0.1:1/b', 'http://127.0.0.1:1/c'].map((url) => ({
      on: ['failure' as const],
      webhook: { url },
    }));
    expect(await q.enqueue(targets, notification)).toBe(2);
    expect(store.listState(PENDING_PREFIX)).toHaveLength(2);
    expect(lines.find((x) => x.level === 'error')?.msg).toMatch(/queue full/);
    // the same delivery is not queued twice
    expect(await q.enqueue(targets.slice(0, 1), notification)).toBe(0);

    const store2 = memoryStore();
    const q2 = new WebhookQueue({ store: store2, logger: l, retry: { initialDelayMs: 1 } });
    q2.start();
    cleanups.push(() => q2.stop());
    await q2.enqueue([{ on: ['failure'], webhook: { url: 'http://169.254.169.254/' } }], notification);
    await q2.idle();
    expect(store2.listState(PENDING_PREFIX)).toEqual([]);
    expect(lines.at(-1)).toMatchObject({
      level: 'error',
      obj: { code: 'WEBHOOK_DENIED_ADDRESS', attempts: 1 },
    });
  });

  it('reports each outcome to its observer: retried, failed, dropped (queue full, failed write), pending', async () => {
    const seen: string[] = [];
    const pending: number[] = [];
    const observer: DeliveryObserver = {
      delivery: (outcome, t) => seen.push(`${outcome}${t.seconds === undefined ? '' : '+latency'}`),
      pending: (n) => pending.push(n),
    };
    const h = await hook(() => 500);
    const store = memoryStore();
    const q = new WebhookQueue({
      store,
      logger: logger().l,
      allow,
      retry: { maxAttempts: 2, initialDelayMs: 1 },
      maxPending: 1,
      observer,
    });
    q.start();
    cleanups.push(() => q.stop());
    const targets = [h.url, `${h.url}/2`].map((url) => ({ on: ['failure' as const], webhook: { url } }));
    expect(await q.enqueue(targets, notification)).toBe(1); // the second: queue full
    for (let i = 0; i < 200 && store.listState(PENDING_PREFIX).length > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    await q.idle();
    expect(seen).toEqual(['dropped', 'retried', 'failed+latency']);
    expect(pending.at(-1)).toBe(0);
    expect(Math.max(...pending)).toBe(1);

    // a store that refuses the write: the notification is dropped, and said so
    const broken = memoryStore();
    broken.transaction = () => {
      throw new Error('disk full');
    };
    const q2 = new WebhookQueue({ store: broken, logger: logger().l, allow, observer });
    cleanups.push(() => q2.stop());
    seen.length = 0;
    expect(await q2.enqueue(targets.slice(0, 1), notification)).toBe(0);
    expect(seen).toEqual(['dropped']);
  });
});
