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
    await until(() => master.record.acknowledged.length === 2, 'two acknowledgements');
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
