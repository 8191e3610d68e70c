// The Mesos client side, tested against our own master-compatible endpoint (standing in for a
// master) and small hand-written servers for a redirect and a silent stream.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesosMasterServer, MesosMaster } from '../mesos-compat/master.ts';
import { encodeJsonRecord } from '../mesos-compat/recordio.ts';
import type { TaskStatus } from '../mesos-compat/schemas.ts';
import { FakeTaskRunner, host, StaticOfferSource } from '../mesos-compat/test-helpers.ts';
import { type FrameworkIdStore, MesosMasterSource } from './mesos-source.ts';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

class MemoryStore implements FrameworkIdStore {
  id: string | undefined;
  saves = 0;
  async load() {
    return this.id;
  }
  async save(id: string) {
    this.id = id;
    this.saves++;
  }
}

async function endpoint(runner = new FakeTaskRunner()) {
  const master = new MesosMaster({
    offers: new StaticOfferSource([host('node-a', 2000)]),
    runner,
    heartbeatIntervalSeconds: 0.1,
    allocationIntervalMs: 20,
  });
  const app: FastifyInstance = createMesosMasterServer(master);
  await app.listen({ host: '127.0.0.1', port: 0 });
  master.start();
  cleanups.push(() => app.close());
  return { master, app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

function client(
  url: string,
  store: FrameworkIdStore,
  extra: Partial<ConstructorParameters<typeof MesosMasterSource>[0]> = {},
) {
  const c = new MesosMasterSource({
    master: url,
    frameworkInfo: { user: 'meson', name: 'meson-test', failover_timeout: 60 },
    store,
    backoffInitialMs: 20,
    backoffMaxMs: 200,
    ...extra,
  });
  c.start();
  cleanups.push(() => c.stop());
  return c;
}

async function until<T>(f: () => T | undefined | false, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function task(id: string, agentId: string) {
  return {
    name: id,
    task_id: { value: id },
    agent_id: { value: agentId },
    resources: [{ name: 'cpus', type: 'SCALAR' as const, scalar: { value: 0.5 } }],
    command: { value: 'true' },
  };
}

describe('MesosMasterSource against the master-compatible endpoint', () => {
  it('subscribes, keeps the framework id, launches, acknowledges exactly the updates with a uuid', async () => {
    const { master, url } = await endpoint();
    const store = new MemoryStore();
    const updates: TaskStatus[] = [];
    const c = client(url, store, {
      onUpdate: (s) => updates.push(s),
      knownTasks: () => [{ taskId: 'gone' }],
    });
    const offer = await until(() => c.offers()[0], 'an offer');
    expect(offer).toMatchObject({ source: 'mesos', hostname: 'node-a', resources: { cpuMillis: 2000 } });
    expect(store.id).toBe(c.frameworkId);
    // Reconciliation after subscribing: the unknown task comes back TASK_LOST without a uuid.
    await until(() => updates.find((u) => u.task_id.value === 'gone'), 'reconciliation');
    await c.accept([offer.id], [task('t1', offer.agentId!)], 0);
    await until(
      () => updates.find((u) => u.task_id.value === 't1' && u.state === 'TASK_FINISHED'),
      'TASK_FINISHED',
    );
    await until(
      () => master.record.acknowledged.length === 2 && c.acknowledged.length === 2,
      'two acknowledgements',
    );
    const withUuid = updates.filter((u) => u.uuid !== undefined).map((u) => u.uuid);
    expect(withUuid).toHaveLength(2);
    expect(c.acknowledged).toEqual(withUuid);
    expect(master.record.acknowledged.map((a) => a.uuid)).toEqual(withUuid);
    // DECLINE with refuse_seconds reaches the endpoint.
    const next = await until(() => c.offers()[0], 'another offer');
    await c.decline([next.id], 3600);
    expect(master.record.declined.map((d) => d.offerId)).toEqual([next.id]);
    expect(c.offers()).toEqual([]);
  });

  it('resubscribes as the same framework after a dropped connection and after a restart, keeping its task', async () => {
    const { master, url } = await endpoint(new FakeTaskRunner({ final: 'hold' }));
    const store = new MemoryStore();
    const c = client(url, store);
    const offer = await until(() => c.offers()[0], 'an offer');
    const fwId = c.frameworkId!;
    await c.accept([offer.id], [task('keep', offer.agentId!)]);
    await until(() => master.taskState(fwId, 'keep') === 'TASK_RUNNING', 'running');
    c.dropConnection();
    await until(() => c.subscriptions >= 2 && c.connected, 'resubscription');
    expect(c.frameworkId).toBe(fwId);
    expect(master.frameworkIds()).toEqual([fwId]);
    await c.stop();
    // A new process with the same store (operator restart) comes back as the same framework.
    const c2 = client(url, store);
    await until(() => c2.connected, 'restart subscription');
    expect(c2.frameworkId).toBe(fwId);
    expect(master.taskState(fwId, 'keep')).toBe('TASK_RUNNING');
    expect(master.isConnected(fwId)).toBe(true);
  });

  it('subscribes as a new framework when the master removed the stored one', async () => {
    const { master, url } = await endpoint();
    const store = new MemoryStore();
    const logs: string[] = [];
    // failover_timeout 0: the master removes the framework as soon as its connection drops
    const c = client(url, store, {
      frameworkInfo: { user: 'meson', name: 'meson-test', failover_timeout: 0 },
      log: (m) => logs.push(m),
    });
    await until(() => c.connected, 'the subscription');
    const old = c.frameworkId!;
    c.dropConnection();
    await until(() => c.connected && c.frameworkId !== old, 'a new framework');
    expect(master.record.removedFrameworks.map((r) => r.frameworkId)).toEqual([old]);
    expect(store.id).toBe(c.frameworkId);
    expect(logs).toContain('mesos framework was removed by the master: subscribing as a new framework');
  });

  it('stops at once while it waits to retry an unreachable master', async () => {
    // a port nobody listens on: every SUBSCRIBE fails, and the client waits up to 20 s between tries
    const closed: Server = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const errors: string[] = [];
    const c = client(`http://127.0.0.1:${port}`, new MemoryStore(), {
      backoffInitialMs: 20_000,
      backoffMaxMs: 20_000,
      log: (_m, f) => errors.push(String((f as { error?: string })?.error)),
    });
    await until(() => errors.length > 0, 'a failed subscription');
    const t0 = Date.now();
    await c.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('keeps a stored id the master refuses for another reason, retrying as that framework', async () => {
    let subscribes = 0;
    const refusing: Server = createServer((_req, res) => {
      subscribes++;
      res.writeHead(403, { 'content-type': 'text/plain' }).end('Not authorized to use role batch');
    });
    await new Promise<void>((r) => refusing.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      refusing.closeAllConnections();
      await new Promise<void>((r) => refusing.close(() => r()));
    });
    const kept = new MemoryStore();
    kept.id = 'fw-kept';
    const c2 = client(`http://127.0.0.1:${(refusing.address() as AddressInfo).port}`, kept);
    await until(() => subscribes >= 3, 'retries');
    expect(c2.frameworkId).toBe('fw-kept');
    expect(kept.id).toBe('fw-kept');
  });

  it('reconciles again every reconcileIntervalMs while subscribed, and reports offer changes', async () => {
    const { url } = await endpoint();
    const updates: TaskStatus[] = [];
    let offerChanges = 0;
    const c = client(url, new MemoryStore(), {
      onUpdate: (s) => updates.push(s),
      onOffers: () => offerChanges++,
      knownTasks: () => [{ taskId: 'gone' }],
      reconcileIntervalMs: 50,
    });
    await until(
      () => updates.filter((u) => u.task_id.value === 'gone').length >= 4,
      'repeated reconciliation',
    );
    expect(updates.every((u) => u.reason === 'REASON_RECONCILIATION' && u.uuid === undefined)).toBe(true);
    await until(() => c.offers()[0], 'an offer');
    expect(offerChanges).toBeGreaterThanOrEqual(1);
  });

  it('follows a 307 with a protocol-relative Location to the leader', async () => {
    const { url } = await endpoint();
    const leader = new URL(url);
    let asked = 0;
    const follower: Server = createServer((_req, res) => {
      asked++;
      res.writeHead(307, { location: `//${leader.host}/api/v1/scheduler` }).end();
    });
    await new Promise<void>((r) => follower.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => follower.close(() => r())));
    const c = client(`http://127.0.0.1:${(follower.address() as AddressInfo).port}`, new MemoryStore());
    await until(() => c.offers()[0], 'an offer from the leader');
    expect(asked).toBe(1);
  });

  it('treats a stream silent for 5 heartbeat intervals as dead and resubscribes', async () => {
    let subscribes = 0;
    const silent: Server = createServer((req, res) => {
      if (req.headers['mesos-stream-id']) {
        res.writeHead(202).end();
        return;
      }
      subscribes++;
      res.writeHead(200, { 'content-type': 'application/json', 'mesos-stream-id': `s${subscribes}` });
      res.write(
        encodeJsonRecord({
          type: 'SUBSCRIBED',
          subscribed: { framework_id: { value: 'fw-silent' }, heartbeat_interval_seconds: 0.02 },
        }),
      );
      // ...and then nothing, connection open.
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      silent.closeAllConnections();
      await new Promise<void>((r) => silent.close(() => r()));
    });
    const store = new MemoryStore();
    const c = client(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`, store);
    await until(() => subscribes >= 3, 'resubscriptions', 3000);
    expect(store.id).toBe('fw-silent');
    expect(c.frameworkId).toBe('fw-silent');
  });
});

describe('MesosMasterSource on recorded event streams', () => {
  /** A master that replays `bytes` one byte per write, then closes; non-SUBSCRIBE calls get 202. */
  async function replaying(streams: Uint8Array[]) {
    const calls: unknown[] = [];
    let n = 0;
    const server: Server = createServer((req, res) => {
      if (req.headers['mesos-stream-id']) {
        let body = '';
        req.on('data', (d) => (body += d));
        req.on('end', () => {
          calls.push(JSON.parse(body));
          res.writeHead(202).end();
        });
        return;
      }
      const bytes = streams[Math.min(n++, streams.length - 1)]!;
      res.writeHead(200, { 'content-type': 'application/json', 'mesos-stream-id': `s${n}` });
      void (async () => {
        for (const b of bytes) {
          res.write(Uint8Array.of(b));
          await new Promise((r) => setImmediate(r));
        }
        if (n < streams.length) res.end();
      })();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, subscribes: () => n };
  }

  const cat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));
  const subscribed = encodeJsonRecord({
    type: 'SUBSCRIBED',
    subscribed: { framework_id: { value: 'fw-rec' }, heartbeat_interval_seconds: 15 },
  });
  const offer = (id: string) =>
    encodeJsonRecord({
      type: 'OFFERS',
      offers: {
        offers: [
          {
            id: { value: id },
            framework_id: { value: 'fw-rec' },
            agent_id: { value: 'a1' },
            hostname: 'nœud-é', // multi-byte characters, split across writes
            resources: [{ name: 'mem', type: 'SCALAR', scalar: { value: 1024 } }],
            attributes: [{ name: 'zone', type: 'TEXT', text: { value: '東京' } }],
          },
        ],
      },
    });

  it('decodes a byte-by-byte stream with multi-byte text, handles RESCIND, and resubscribes on ERROR', async () => {
    const first = cat(
      subscribed,
      offer('o1'),
      offer('o2'),
      encodeJsonRecord({ type: 'RESCIND', rescind: { offer_id: { value: 'o1' } } }),
      encodeJsonRecord({
        type: 'UPDATE',
        update: { status: { task_id: { value: 'x' }, state: 'TASK_LOST', source: 'SOURCE_MASTER' } },
      }),
      encodeJsonRecord({
        type: 'UPDATE',
        update: {
          status: {
            task_id: { value: 'y' },
            state: 'TASK_RUNNING',
            agent_id: { value: 'a1' },
            uuid: 'AAECAw==',
          },
        },
      }),
      encodeJsonRecord({ type: 'ERROR', error: { message: 'Framework failed over' } }),
    );
    const r = await replaying([first, subscribed]);
    const store = new MemoryStore();
    const c = client(r.url, store);
    await until(() => r.subscribes() >= 2, 'resubscription after ERROR');
    // o2 was held before the ERROR; o1 was rescinded. (Offers are dropped on resubscription.)
    const acks = r.calls.filter((x) => (x as { type: string }).type === 'ACKNOWLEDGE');
    expect(acks).toEqual([
      {
        type: 'ACKNOWLEDGE',
        framework_id: { value: 'fw-rec' },
        acknowledge: { agent_id: { value: 'a1' }, task_id: { value: 'y' }, uuid: 'AAECAw==' },
      },
    ]);
    expect(store.id).toBe('fw-rec');
    expect(c.frameworkId).toBe('fw-rec');
  });

  it('subscribes as a new framework when the master says, in an ERROR before SUBSCRIBED, that ours was removed', async () => {
    // as a Mesos master answers a removed framework's SUBSCRIBE: an ERROR on the stream
    const asked: (string | undefined)[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        if (req.headers['mesos-stream-id']) {
          res.writeHead(202).end();
          return;
        }
        const id = (JSON.parse(body) as { framework_id?: { value: string } }).framework_id?.value;
        asked.push(id);
        res.writeHead(200, { 'content-type': 'application/json', 'mesos-stream-id': `s${asked.length}` });
        if (id === 'fw-gone') {
          res.end(encodeJsonRecord({ type: 'ERROR', error: { message: 'Framework has been removed' } }));
          return;
        }
        res.write(
          encodeJsonRecord({
            type: 'SUBSCRIBED',
            subscribed: { framework_id: { value: id ?? 'fw-new' }, heartbeat_interval_seconds: 15 },
          }),
        );
        // an ERROR after SUBSCRIBED (another scheduler took the framework over) keeps the id
        if (asked.length === 2)
          res.end(encodeJsonRecord({ type: 'ERROR', error: { message: 'has been removed' } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });
    const store = new MemoryStore();
    store.id = 'fw-gone';
    const c = client(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, store);
    await until(() => asked.length >= 3 && c.connected, 'a new subscription');
    expect(asked.slice(0, 3)).toEqual(['fw-gone', undefined, 'fw-new']);
    expect(c.frameworkId).toBe('fw-new');
    expect(store.id).toBe('fw-new');
  });

  it('keeps offers decoded from split chunks (multi-byte text intact) and drops rescinded ones', async () => {
    const r = await replaying([
      subscribed, // ends at once: the client resubscribes to the next stream, which stays open
      cat(
        subscribed,
        offer('o1'),
        offer('o2'),
        encodeJsonRecord({ type: 'RESCIND', rescind: { offer_id: { value: 'o1' } } }),
      ),
    ]);
    const c = client(r.url, new MemoryStore());
    const offers = await until(() => {
      const o = c.offers();
      return o.length === 1 && o[0]!.id === 'o2' && r.subscribes() >= 2 && o;
    }, 'o2 alone');
    await new Promise((res) => setTimeout(res, 100));
    expect(c.offers().map((o) => o.id)).toEqual(['o2']);
    expect(offers[0]).toMatchObject({
      source: 'mesos',
      hostname: 'nœud-é',
      attributes: { zone: '東京' },
      resources: { memoryBytes: 1024 * 1024 * 1024 },
    });
  });

  it('survives a garbage length prefix from the master: drops the stream and resubscribes', async () => {
    const r = await replaying([cat(subscribed, new TextEncoder().encode('12x\n{}')), subscribed]);
    const c = client(r.url, new MemoryStore());
    await until(() => r.subscribes() >= 2 && c.connected, 'resubscription after garbage');
  });
});
