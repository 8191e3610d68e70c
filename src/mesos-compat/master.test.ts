import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createMesosMasterServer, MesosMaster, type MesosMasterOptions, responseSink } from './master.ts';
import { decodeJsonRecord, RecordIoDecoder } from './recordio.ts';
import { FakeTaskRunner, host, StaticOfferSource } from './test-helpers.ts';

// biome-ignore lint/suspicious/noExplicitAny: events are JSON read back from the wire
type Ev = any;

interface Stream {
  status: number;
  headers: Headers;
  streamId: string;
  next(type?: string, timeoutMs?: number): Promise<Ev>;
  seen: Ev[];
  close(): void;
}

let apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const a of apps) await a.close();
  apps = [];
});

async function start(
  opts: Partial<MesosMasterOptions> = {},
): Promise<{ base: string; master: MesosMaster; source: StaticOfferSource; runner: FakeTaskRunner }> {
  const source = (opts.offers as StaticOfferSource | undefined) ?? new StaticOfferSource([host('node-a')]);
  const runner = (opts.runner as FakeTaskRunner | undefined) ?? new FakeTaskRunner();
  let n = 0;
  const master = new MesosMaster({
    heartbeatIntervalSeconds: 0.05,
    allocationIntervalMs: 20,
    newId: () => `id-${++n}`,
    ...opts,
    offers: source,
    runner,
  });
  const app = createMesosMasterServer(master);
  apps.push(app);
  await app.listen({ host: '127.0.0.1', port: 0 });
  master.start();
  const { port } = app.server.address() as AddressInfo;
  return { base: `http://127.0.0.1:${port}`, master, source, runner };
}

async function subscribe(base: string, body: object, headers: Record<string, string> = {}): Promise<Stream> {
  const ac = new AbortController();
  const res = await fetch(`${base}/api/v1/scheduler`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: ac.signal,
  });
  const seen: Ev[] = [];
  const waiters: (() => void)[] = [];
  if (res.status === 200 && res.body) {
    const dec = new RecordIoDecoder();
    void (async () => {
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          for (const r of dec.push(chunk)) {
            seen.push(decodeJsonRecord(r));
            for (const w of waiters.splice(0)) w();
          }
        }
      } catch {
        // aborted
      }
      seen.push({ type: '<EOF>' });
      for (const w of waiters.splice(0)) w();
    })();
  }
  let cursor = 0;
  return {
    status: res.status,
    headers: res.headers,
    streamId: res.headers.get('mesos-stream-id') ?? '',
    seen,
    async next(type, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (cursor < seen.length) {
          const e = seen[cursor++];
          if (!type || e.type === type) return e;
        }
        if (Date.now() > deadline) throw new Error(`no ${type ?? 'event'} within ${timeoutMs} ms`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
    },
    close: () => ac.abort(),
  };
}

async function call(base: string, body: object | string, streamId?: string, ctype = 'application/json') {
  const headers: Record<string, string> = { 'content-type': ctype };
  if (streamId !== undefined) headers['mesos-stream-id'] = streamId;
  const res = await fetch(`${base}/api/v1/scheduler`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

const FW = { user: 'test', name: 'unit' };

/** Acknowledges a status update as a framework does. */
function acknowledge(base: string, fwId: string, status: Ev, streamId: string) {
  return call(
    base,
    {
      type: 'ACKNOWLEDGE',
      framework_id: { value: fwId },
      acknowledge: { agent_id: status.agent_id, task_id: status.task_id, uuid: status.uuid },
    },
    streamId,
  );
}

function taskFor(offer: Ev, taskId: string, cpus = 0.5, over: object = {}) {
  return {
    name: taskId,
    task_id: { value: taskId },
    agent_id: offer.agent_id,
    resources: [
      { name: 'cpus', type: 'SCALAR', scalar: { value: cpus } },
      { name: 'mem', type: 'SCALAR', scalar: { value: 64 } },
    ],
    command: { value: 'true' },
    ...over,
  };
}

function launch(fwId: string, offer: Ev, taskId: string, cpus = 0.5) {
  return {
    type: 'ACCEPT',
    framework_id: { value: fwId },
    accept: {
      offer_ids: [offer.id],
      operations: [
        {
          type: 'LAUNCH',
          launch: {
            task_infos: [taskFor(offer, taskId, cpus)],
          },
        },
      ],
    },
  };
}

describe('Mesos master endpoint: SUBSCRIBE', () => {
  it('streams SUBSCRIBED, OFFERS and HEARTBEATs as chunked JSON RecordIO with a stream id', async () => {
    const { base } = await start({
      offers: new StaticOfferSource([host('node-a', 2000, 1024 ** 3, { zone: 'z1' })]),
    });
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toBe('application/json');
    expect(s.headers.get('transfer-encoding')).toBe('chunked');
    expect(s.streamId).toMatch(/^[0-9a-f-]{36}$/);
    const sub = await s.next();
    expect(sub.type).toBe('SUBSCRIBED');
    expect(sub.subscribed.heartbeat_interval_seconds).toBe(0.05);
    const offers = await s.next();
    expect(offers.type).toBe('OFFERS');
    const o = offers.offers.offers[0];
    expect(o.hostname).toBe('node-a');
    expect(o.framework_id).toEqual(sub.subscribed.framework_id);
    // 1 GiB is exactly 1024 MB; ports as ranges; labels as TEXT attributes.
    expect(o.resources).toContainEqual({ name: 'mem', type: 'SCALAR', scalar: { value: 1024 }, role: '*' });
    expect(o.resources).toContainEqual({ name: 'cpus', type: 'SCALAR', scalar: { value: 2 }, role: '*' });
    expect(o.resources).toContainEqual({
      name: 'ports',
      type: 'RANGES',
      ranges: { range: [{ begin: 31000, end: 31099 }] },
      role: '*',
    });
    expect(o.attributes).toEqual([{ name: 'zone', type: 'TEXT', text: { value: 'z1' } }]);
    await s.next('HEARTBEAT');
    await s.next('HEARTBEAT');
    s.close();
  });

  it('offers host memory rounded down to Mesos thousandths of a MB, never up', async () => {
    const { base } = await start({ offers: new StaticOfferSource([host('odd', 1000, 1024 ** 2 + 1023)]) });
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const o = (await s.next('OFFERS')).offers.offers[0];
    // 1 MiB + 1023 bytes = 1.000975... MB: offered as 1, not 1.001.
    expect(o.resources.find((r: Ev) => r.name === 'mem').scalar.value).toBe(1);
    s.close();
  });

  it('refuses SUBSCRIBE carrying a Mesos-Stream-Id, and a non-JSON Accept', async () => {
    const { base } = await start();
    const a = await subscribe(
      base,
      { type: 'SUBSCRIBE', subscribe: { framework_info: FW } },
      { 'mesos-stream-id': 'x' },
    );
    expect(a.status).toBe(400);
    const b = await subscribe(
      base,
      { type: 'SUBSCRIBE', subscribe: { framework_info: FW } },
      { accept: 'application/x-protobuf' },
    );
    expect(b.status).toBe(406);
  });
});

describe('Mesos master endpoint: tasks, acknowledgements, reconciliation', () => {
  it('launches on ACCEPT, sends uuid-carrying updates one at a time and resends until acknowledged', async () => {
    const { base, master, runner } = await start({ statusRetryMs: 100 });
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value;
    const offer = (await s.next('OFFERS')).offers.offers[0];
    expect((await call(base, launch(fwId, offer, 't1'), s.streamId)).status).toBe(202);
    const running = (await s.next('UPDATE')).update.status;
    expect(running).toMatchObject({
      task_id: { value: 't1' },
      state: 'TASK_RUNNING',
      agent_id: offer.agent_id,
    });
    expect(running.uuid).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(runner.launched[0]?.hostname).toBe('node-a');
    // Not acknowledged: the same update comes again; TASK_FINISHED waits behind it.
    const again = (await s.next('UPDATE')).update.status;
    expect(again.uuid).toBe(running.uuid);
    expect(again.state).toBe('TASK_RUNNING');
    const ack = (st: Ev) => ({
      type: 'ACKNOWLEDGE',
      framework_id: { value: fwId },
      acknowledge: { agent_id: st.agent_id, task_id: st.task_id, uuid: st.uuid },
    });
    expect((await call(base, ack(running), s.streamId)).status).toBe(202);
    let finished = (await s.next('UPDATE')).update.status;
    while (finished.state === 'TASK_RUNNING') finished = (await s.next('UPDATE')).update.status;
    expect(finished.state).toBe('TASK_FINISHED');
    expect(finished.uuid).not.toBe(running.uuid);
    await call(base, ack(finished), s.streamId);
    expect(master.record.acknowledged.map((a) => a.uuid)).toEqual([running.uuid, finished.uuid]);
    // A wrong uuid is accepted (202) but acknowledges nothing.
    await call(base, ack({ ...finished, uuid: 'AAAA' }), s.streamId);
    expect(master.record.acknowledged).toHaveLength(2);

    // Explicit reconciliation: known task -> latest state, unknown -> TASK_LOST; neither has a uuid.
    await call(
      base,
      {
        type: 'RECONCILE',
        framework_id: { value: fwId },
        reconcile: { tasks: [{ task_id: { value: 't1' } }, { task_id: { value: 'nope' } }] },
      },
      s.streamId,
    );
    const r1 = (await s.next('UPDATE')).update.status;
    const r2 = (await s.next('UPDATE')).update.status;
    expect(r1).toMatchObject({
      task_id: { value: 't1' },
      state: 'TASK_FINISHED',
      reason: 'REASON_RECONCILIATION',
      source: 'SOURCE_MASTER',
    });
    expect(r2).toMatchObject({
      task_id: { value: 'nope' },
      state: 'TASK_LOST',
      reason: 'REASON_RECONCILIATION',
    });
    expect(r1.uuid).toBeUndefined();
    expect(r2.uuid).toBeUndefined();
    s.close();
  });

  it('rejects tasks that ask for more than offered or reuse an id (TASK_ERROR), and ACCEPT on a spent offer (TASK_LOST)', async () => {
    const { base, runner } = await start({ runner: new FakeTaskRunner({ final: 'hold' }) });
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value;
    const offer = (await s.next('OFFERS')).offers.offers[0];
    await call(base, launch(fwId, offer, 'big', 4.001), s.streamId);
    const err = (await s.next('UPDATE')).update.status;
    expect(err).toMatchObject({
      state: 'TASK_ERROR',
      reason: 'REASON_TASK_INVALID',
      source: 'SOURCE_MASTER',
    });
    expect(err.message).toMatch(/more resources than offered/);
    expect(err.uuid).toBeUndefined();
    await call(base, launch(fwId, offer, 'late'), s.streamId);
    const lost = (await s.next('UPDATE')).update.status;
    expect(lost).toMatchObject({
      task_id: { value: 'late' },
      state: 'TASK_LOST',
      reason: 'REASON_INVALID_OFFERS',
    });
    expect(runner.launched).toHaveLength(0);
    s.close();
  });

  it('KILL ends a running task through the runner; KILL of an unknown task answers TASK_LOST', async () => {
    const { base, master, runner } = await start({ runner: new FakeTaskRunner({ final: 'hold' }) });
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value;
    const offer = (await s.next('OFFERS')).offers.offers[0];
    await call(base, launch(fwId, offer, 'k1'), s.streamId);
    const running = (await s.next('UPDATE')).update.status;
    await acknowledge(base, fwId, running, s.streamId);
    await call(
      base,
      { type: 'KILL', framework_id: { value: fwId }, kill: { task_id: { value: 'k1' } } },
      s.streamId,
    );
    expect((await s.next('UPDATE')).update.status.state).toBe('TASK_KILLED');
    expect(runner.kills).toEqual([`${fwId}/k1`]);
    expect(master.taskState(fwId, 'k1')).toBe('TASK_KILLED');
    await call(
      base,
      { type: 'KILL', framework_id: { value: fwId }, kill: { task_id: { value: 'ghost' } } },
      s.streamId,
    );
    expect((await s.next('UPDATE')).update.status).toMatchObject({
      task_id: { value: 'ghost' },
      state: 'TASK_LOST',
    });
    s.close();
  });
});

describe('Mesos master endpoint: offers', () => {
  it('DECLINE filters the host for refuse_seconds; REVIVE clears filters; SUPPRESS stops offers', async () => {
    const { base, master } = await start();
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value;
    const o1 = (await s.next('OFFERS')).offers.offers[0];
    await call(
      base,
      {
        type: 'DECLINE',
        framework_id: { value: fwId },
        decline: { offer_ids: [o1.id], filters: { refuse_seconds: 0.3 } },
      },
      s.streamId,
    );
    expect(master.record.declined).toEqual([{ frameworkId: fwId, offerId: o1.id.value }]);
    const t0 = Date.now();
    const o2 = (await s.next('OFFERS')).offers.offers[0];
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await call(
      base,
      {
        type: 'DECLINE',
        framework_id: { value: fwId },
        decline: { offer_ids: [o2.id], filters: { refuse_seconds: 3600 } },
      },
      s.streamId,
    );
    await call(base, { type: 'REVIVE', framework_id: { value: fwId } }, s.streamId);
    const o3 = (await s.next('OFFERS', 500)).offers.offers[0];
    await call(base, { type: 'SUPPRESS', framework_id: { value: fwId } }, s.streamId);
    await call(
      base,
      {
        type: 'DECLINE',
        framework_id: { value: fwId },
        decline: { offer_ids: [o3.id], filters: { refuse_seconds: 0 } },
      },
      s.streamId,
    );
    await expect(s.next('OFFERS', 300)).rejects.toThrow(/no OFFERS/);
    s.close();
  });

  it('rescinds an outstanding offer when its capacity is taken, or when it expires', async () => {
    const { base, source, master } = await start();
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const o1 = (await s.next('OFFERS')).offers.offers[0];
    source.hosts = [host('node-a', 1000)];
    expect((await s.next('RESCIND')).rescind.offer_id).toEqual(o1.id);
    expect(master.record.rescinded[0]).toMatchObject({ offerId: o1.id.value, why: 'capacity taken' });
    // re-offered with what is left
    const o2 = (await s.next('OFFERS')).offers.offers[0];
    expect(o2.resources.find((r: Ev) => r.name === 'cpus').scalar.value).toBe(1);
    s.close();

    const b = await start({ offerTimeoutMs: 100 });
    const s2 = await subscribe(b.base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const e1 = (await s2.next('OFFERS')).offers.offers[0];
    expect((await s2.next('RESCIND')).rescind.offer_id).toEqual(e1.id);
    expect(b.master.record.rescinded[0]?.why).toBe('expired');
    s2.close();
  });

  it('never offers capacity held by a live task to anyone', async () => {
    const { base } = await start({ runner: new FakeTaskRunner({ final: 'hold' }) });
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value;
    const offer = (await s.next('OFFERS')).offers.offers[0];
    await call(base, launch(fwId, offer, 'hold', 3.5), s.streamId);
    await call(base, { type: 'REVIVE', framework_id: { value: fwId } }, s.streamId);
    const next = (await s.next('OFFERS')).offers.offers[0];
    expect(next.resources.find((r: Ev) => r.name === 'cpus').scalar.value).toBe(0.5);
    s.close();
  });
});

describe('Mesos master endpoint: status codes and bad calls', () => {
  it('answers like a master: 400/403/405/415/501 with a plain-text reason', async () => {
    const { base } = await start();
    const s = await subscribe(base, {
      type: 'SUBSCRIBE',
      subscribe: { framework_info: { ...FW, failover_timeout: 60 } },
    });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value;
    const revive = { type: 'REVIVE', framework_id: { value: fwId } };
    expect(await call(base, revive)).toMatchObject({
      status: 400,
      text: expect.stringMatching(/Mesos-Stream-Id/),
    });
    expect(await call(base, revive, 'wrong')).toMatchObject({
      status: 400,
      text: expect.stringMatching(/didn't match/),
    });
    expect(await call(base, { type: 'REVIVE', framework_id: { value: 'other' } }, s.streamId)).toMatchObject({
      status: 400,
      text: expect.stringMatching(/Framework cannot be found/),
    });
    expect(await call(base, '{"type":', s.streamId)).toMatchObject({
      status: 400,
      text: expect.stringMatching(/Failed to parse body/),
    });
    expect(await call(base, { type: 'DECLINE', framework_id: { value: fwId } }, s.streamId)).toMatchObject({
      status: 400,
      text: expect.stringMatching(/call\.decline/),
    });
    expect(await call(base, revive, s.streamId, 'application/x-protobuf')).toMatchObject({
      status: 415,
      text: expect.stringMatching(/JSON only/),
    });
    expect(await call(base, revive, s.streamId, 'text/plain')).toMatchObject({ status: 415 });
    expect(
      (await fetch(`${base}/api/v1/scheduler`, { method: 'POST', body: new Uint8Array([123, 125]) })).status,
    ).toBe(400);
    expect((await fetch(`${base}/api/v1/scheduler`)).status).toBe(405);
    expect(
      await call(base, { type: 'UPDATE_FRAMEWORK', framework_id: { value: fwId } }, s.streamId),
    ).toMatchObject({ status: 501 });
    const offer = (await s.next('OFFERS')).offers.offers[0];
    expect(
      await call(
        base,
        {
          type: 'ACCEPT',
          framework_id: { value: fwId },
          accept: { offer_ids: [offer.id], operations: [{ type: 'RESERVE' }] },
        },
        s.streamId,
      ),
    ).toMatchObject({ status: 400, text: expect.stringMatching(/RESERVE is not supported/) });
    // Over the body limit: rejected before parsing.
    const big = await fetch(`${base}/api/v1/scheduler`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'mesos-stream-id': s.streamId },
      body: JSON.stringify({ ...revive, pad: 'x'.repeat(1024 * 1024) }),
    });
    expect(big.status).toBe(413);
    // Disconnected framework: 403.
    s.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(await call(base, revive, s.streamId)).toMatchObject({
      status: 403,
      text: 'Framework is not subscribed',
    });
    // The server survived all of it.
    expect((await fetch(`${base}/version`)).status).toBe(200);
  });

  it('serves /master/api/v1/scheduler and GET /version', async () => {
    const { base } = await start();
    expect(await (await fetch(`${base}/version`)).json()).toMatchObject({ version: '1.11.0' });
    const res = await fetch(`${base}/master/api/v1/scheduler`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'TEARDOWN', framework_id: { value: 'x' } }),
    });
    expect(res.status).toBe(400);
  });
});

describe('Mesos master endpoint: failover', () => {
  it('keeps tasks across a resubscription by framework id and resends unacknowledged updates', async () => {
    const { base, master } = await start({ runner: new FakeTaskRunner({ final: 'hold' }) });
    const fwInfo = { ...FW, failover_timeout: 60 };
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: fwInfo } });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value;
    const offer = (await s.next('OFFERS')).offers.offers[0];
    await call(base, launch(fwId, offer, 'f1'), s.streamId);
    const running = (await s.next('UPDATE')).update.status;
    s.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(master.isConnected(fwId)).toBe(false);
    expect(master.frameworkIds()).toContain(fwId);
    const again = { ...fwInfo, id: { value: fwId } };
    const s2 = await subscribe(base, {
      type: 'SUBSCRIBE',
      framework_id: { value: fwId },
      subscribe: { framework_info: again },
    });
    expect((await s2.next('SUBSCRIBED')).subscribed.framework_id.value).toBe(fwId);
    expect(s2.streamId).not.toBe(s.streamId);
    expect((await s2.next('UPDATE')).update.status.uuid).toBe(running.uuid);
    expect(master.taskState(fwId, 'f1')).toBe('TASK_RUNNING');
    // A newer subscription replaces this one, which gets ERROR and ends.
    const s3 = await subscribe(base, {
      type: 'SUBSCRIBE',
      framework_id: { value: fwId },
      subscribe: { framework_info: again },
    });
    expect((await s2.next('ERROR')).error.message).toMatch(/failed over/);
    expect((await s2.next('<EOF>')).type).toBe('<EOF>');
    s3.close();
  });

  it('removes the framework and kills its tasks when the failover timeout passes; TEARDOWN does at once', async () => {
    const runner = new FakeTaskRunner({ final: 'hold' });
    const { base, master } = await start({ runner });
    const s = await subscribe(base, {
      type: 'SUBSCRIBE',
      subscribe: { framework_info: { ...FW, failover_timeout: 0.2 } },
    });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value;
    const offer = (await s.next('OFFERS')).offers.offers[0];
    await call(base, launch(fwId, offer, 'x1'), s.streamId);
    await s.next('UPDATE');
    s.close();
    await new Promise((r) => setTimeout(r, 400));
    expect(master.frameworkIds()).not.toContain(fwId);
    expect(runner.kills).toEqual([`${fwId}/x1`]);
    expect(master.record.removedFrameworks).toEqual([{ frameworkId: fwId, why: 'failover timeout expired' }]);
    const back = await subscribe(base, {
      type: 'SUBSCRIBE',
      framework_id: { value: fwId },
      subscribe: { framework_info: { ...FW, id: { value: fwId } } },
    });
    expect(back.status).toBe(403);

    const t = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const tId = (await t.next('SUBSCRIBED')).subscribed.framework_id.value;
    expect((await call(base, { type: 'TEARDOWN', framework_id: { value: tId } }, t.streamId)).status).toBe(
      202,
    );
    expect((await t.next('<EOF>')).type).toBe('<EOF>');
    expect(master.frameworkIds()).not.toContain(tId);
  });
});

describe('Mesos master endpoint: bounds', () => {
  it('refuses subscriptions beyond maxFrameworks with 503, and serves the others', async () => {
    const { base } = await start({ maxFrameworks: 2 });
    const a = await subscribe(base, {
      type: 'SUBSCRIBE',
      subscribe: { framework_info: { ...FW, failover_timeout: 60 } },
    });
    const b = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const c = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    expect([a.status, b.status, c.status]).toEqual([200, 200, 503]);
    // A disconnected framework within its failover timeout still holds its place.
    a.close();
    await new Promise((r) => setTimeout(r, 100));
    const d = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    expect(d.status).toBe(503);
    b.close();
  });

  it('keeps at most maxCompletedTasks finished tasks per framework', async () => {
    const { base, master } = await start({ maxCompletedTasks: 1 });
    const s = await subscribe(base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value;
    for (const id of ['c1', 'c2']) {
      await call(base, { type: 'REVIVE', framework_id: { value: fwId } }, s.streamId);
      const offer = (await s.next('OFFERS')).offers.offers[0];
      await call(base, launch(fwId, offer, id), s.streamId);
      for (let n = 0; n < 2; n++) {
        const st = (await s.next('UPDATE')).update.status;
        await call(
          base,
          {
            type: 'ACKNOWLEDGE',
            framework_id: { value: fwId },
            acknowledge: { agent_id: st.agent_id, task_id: st.task_id, uuid: st.uuid },
          },
          s.streamId,
        );
      }
    }
    expect(master.taskState(fwId, 'c1')).toBeUndefined();
    expect(master.taskState(fwId, 'c2')).toBe('TASK_FINISHED');
    s.close();
  });

  it('drops a subscriber whose unread stream passes maxStreamBufferBytes instead of buffering without end', () => {
    let buffered = 0;
    let destroyed = false;
    let overflowed = 0;
    const res = {
      write: (b: Uint8Array) => {
        buffered += b.length;
        return false;
      },
      get writableLength() {
        return buffered;
      },
      destroy: () => {
        destroyed = true;
      },
      get destroyed() {
        return destroyed;
      },
      end: () => {},
    };
    const sink = responseSink(res as never, 100, () => overflowed++);
    for (let i = 0; i < 10; i++) sink.send({ type: 'HEARTBEAT' });
    expect(destroyed).toBe(true);
    expect(overflowed).toBe(1);
    expect(buffered).toBeLessThan(130);
  });
});

describe('Mesos master endpoint: LAUNCH_GROUP', () => {
  const EXECUTOR = {
    type: 'DEFAULT',
    executor_id: { value: 'exec-1' },
    resources: [
      { name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } },
      { name: 'mem', type: 'SCALAR', scalar: { value: 32 } },
    ],
  };
  const groupTask = taskFor;
  function launchGroup(fwId: string, offer: Ev, tasks: object[], executor: object = EXECUTOR) {
    return {
      type: 'ACCEPT',
      framework_id: { value: fwId },
      accept: {
        offer_ids: [offer.id],
        operations: [{ type: 'LAUNCH_GROUP', launch_group: { executor, task_group: { tasks } } }],
        filters: { refuse_seconds: 0 },
      },
    };
  }
  async function framework(opts: Partial<MesosMasterOptions> = {}) {
    const started = await start({ runner: new FakeTaskRunner({ final: 'hold' }), ...opts });
    const s = await subscribe(started.base, { type: 'SUBSCRIBE', subscribe: { framework_info: FW } });
    const fwId = (await s.next('SUBSCRIBED')).subscribed.framework_id.value as string;
    return { ...started, s, fwId };
  }
  /** The next `n` updates, as task id -> status. */
  async function updates(s: Stream, n: number): Promise<Ev[]> {
    const out: Ev[] = [];
    for (let i = 0; i < n; i++) out.push((await s.next('UPDATE')).update.status);
    return out;
  }

  it('launches every task of the group at once on the offered agent, each with its own acknowledged updates', async () => {
    const { base, s, fwId, runner } = await framework({ runner: new FakeTaskRunner() });
    const offer = (await s.next('OFFERS')).offers.offers[0];
    const res = await call(
      base,
      launchGroup(fwId, offer, [groupTask(offer, 'g1'), groupTask(offer, 'g2')]),
      s.streamId,
    );
    expect(res.status).toBe(202);
    expect(runner.groups).toHaveLength(1);
    expect(runner.groups[0]).toMatchObject({
      frameworkId: fwId,
      agentId: offer.agent_id.value,
      hostname: 'node-a',
    });
    expect(runner.groups[0]!.executor.executor_id.value).toBe('exec-1');
    expect(runner.groups[0]!.tasks.map((t) => t.task_id.value)).toEqual(['g1', 'g2']);
    const finished = new Set<string>();
    for (let i = 0; i < 8 && finished.size < 2; i++) {
      const st = (await s.next('UPDATE')).update.status;
      expect(st.source).toBe('SOURCE_EXECUTOR');
      expect(st.uuid).toBeTruthy();
      if (st.state === 'TASK_FINISHED') finished.add(st.task_id.value);
      await acknowledge(base, fwId, st, s.streamId);
    }
    expect([...finished].sort()).toEqual(['g1', 'g2']);
    s.close();
  });

  it('fails EVERY task of an invalid group with TASK_ERROR (no uuid) and launches none: each attack form', async () => {
    const { base, s, fwId, runner } = await framework();
    let offer = (await s.next('OFFERS')).offers.offers[0];
    // a live lone task, whose id a group then reuses
    await call(
      base,
      {
        ...launch(fwId, offer, 'live', 0.5),
        accept: { ...launch(fwId, offer, 'live', 0.5).accept, filters: { refuse_seconds: 0 } },
      },
      s.streamId,
    );
    expect((await s.next('UPDATE')).update.status.state).toBe('TASK_RUNNING');
    const cases: [string, (o: Ev) => object, RegExp][] = [
      [
        'duplicate ids',
        (o) => launchGroup(fwId, o, [groupTask(o, 'd'), groupTask(o, 'd')]),
        /Task 'd' is invalid: Task d already exists/,
      ],
      [
        'an id of a live task',
        (o) => launchGroup(fwId, o, [groupTask(o, 'fresh'), groupTask(o, 'live')]),
        /Task 'live' is invalid: Task live already exists/,
      ],
      [
        'mixed agents',
        (o) =>
          launchGroup(fwId, o, [
            groupTask(o, 'm1'),
            groupTask(o, 'm2', 0.5, { agent_id: { value: 'agent-other' } }),
          ]),
        /names agent agent-other/,
      ],
      [
        'resources that fit one by one but not together with the executor',
        (o) => launchGroup(fwId, o, [groupTask(o, 'r1', 1.75), groupTask(o, 'r2', 1.7)]),
        /more than available/,
      ],
      [
        'a task using nothing',
        (o) => launchGroup(fwId, o, [groupTask(o, 'z1'), { ...groupTask(o, 'z2'), resources: [] }]),
        /uses no resources/,
      ],
      [
        'a CUSTOM executor',
        (o) =>
          launchGroup(fwId, o, [groupTask(o, 'c1')], {
            ...EXECUTOR,
            type: 'CUSTOM',
            command: { value: 'x' },
          }),
        /only the DEFAULT executor/,
      ],
      [
        'an executor without type',
        (o) => launchGroup(fwId, o, [groupTask(o, 'n1')], { ...EXECUTOR, type: undefined }),
        /'ExecutorInfo.type' must be set/,
      ],
      [
        'a DEFAULT executor with a command',
        (o) => launchGroup(fwId, o, [groupTask(o, 'x1')], { ...EXECUTOR, command: { value: 'rm -rf /' } }),
        /must not be set for 'DEFAULT'/,
      ],
      [
        'an executor below the minimum cpus',
        (o) =>
          launchGroup(fwId, o, [groupTask(o, 'e1')], { ...EXECUTOR, resources: [EXECUTOR.resources[1]] }),
        /less CPUs \(0\)/,
      ],
      [
        'an executor below the minimum mem',
        (o) =>
          launchGroup(fwId, o, [groupTask(o, 'e2')], { ...EXECUTOR, resources: [EXECUTOR.resources[0]] }),
        /less memory \(0\)/,
      ],
      [
        'an executor of another framework',
        (o) =>
          launchGroup(fwId, o, [groupTask(o, 'f1')], { ...EXECUTOR, framework_id: { value: 'other-fw' } }),
        /invalid FrameworkID/,
      ],
      [
        'a task whose executor differs',
        (o) =>
          launchGroup(fwId, o, [
            groupTask(o, 'x2', 0.5, { executor: { ...EXECUTOR, executor_id: { value: 'other' } } }),
          ]),
        /is different from executor 'exec-1'/,
      ],
      [
        'two tasks asking for the same host port',
        (o) => {
          const port = { name: 'ports', type: 'RANGES', ranges: { range: [{ begin: 31000, end: 31001 }] } };
          const withPort = (id: string) => {
            const t = groupTask(o, id);
            return { ...t, resources: [...t.resources, port] };
          };
          return launchGroup(fwId, o, [withPort('p1'), withPort('p2')]);
        },
        /Task 'p2' is invalid: a port it asks for is asked for by another task/,
      ],
      [
        'a task with a Docker container',
        (o) =>
          launchGroup(fwId, o, [
            groupTask(o, 'k1', 0.5, { container: { type: 'DOCKER', docker: { image: 'evil' } } }),
          ]),
        /Docker ContainerInfo is not supported/,
      ],
    ];
    for (const [what, body, why] of cases) {
      offer = (await s.next('OFFERS')).offers.offers[0];
      const b = body(offer) as Ev;
      const ids = b.accept.operations[0].launch_group.task_group.tasks.map((t: Ev) => t.task_id.value);
      expect((await call(base, b, s.streamId)).status, what).toBe(202);
      for (const st of await updates(s, ids.length)) {
        expect(st, what).toMatchObject({
          state: 'TASK_ERROR',
          reason: 'REASON_TASK_GROUP_INVALID',
          source: 'SOURCE_MASTER',
        });
        expect(st.uuid, what).toBeUndefined();
        expect(st.message, what).toMatch(why);
        expect(ids, what).toContain(st.task_id.value);
      }
    }
    expect(runner.groups).toHaveLength(0);
    s.close();
  });

  it('answers 400 to a group of 1025 tasks, or a LAUNCH_GROUP without its field; nothing is launched', async () => {
    const { base, s, fwId, runner } = await framework();
    const offer = (await s.next('OFFERS')).offers.offers[0];
    const many = Array.from({ length: 1025 }, (_, i) => groupTask(offer, `m${i}`, 0.001));
    const big = await call(base, launchGroup(fwId, offer, many), s.streamId);
    expect(big.status).toBe(400);
    expect(big.text).toMatch(/launch_group\.task_group\.tasks/);
    const bare = await call(
      base,
      {
        type: 'ACCEPT',
        framework_id: { value: fwId },
        accept: { offer_ids: [offer.id], operations: [{ type: 'LAUNCH_GROUP' }] },
      },
      s.streamId,
    );
    expect(bare.status).toBe(400);
    expect(bare.text).toMatch(/needs its launch_group field/);
    expect(runner.launched).toHaveLength(0);
    // the offer is still the framework's: nothing was taken from it
    await call(base, launchGroup(fwId, offer, [groupTask(offer, 'ok')]), s.streamId);
    expect(runner.groups).toHaveLength(1);
    s.close();
  });

  it('refuses groups with TASK_ERROR when the runner cannot run them', async () => {
    const inner = new FakeTaskRunner({ final: 'hold' });
    const runner = { launch: inner.launch.bind(inner), kill: inner.kill.bind(inner) };
    const { base, s, fwId } = await framework({ runner: runner as unknown as FakeTaskRunner });
    const offer = (await s.next('OFFERS')).offers.offers[0];
    await call(base, launchGroup(fwId, offer, [groupTask(offer, 'a'), groupTask(offer, 'b')]), s.streamId);
    for (const st of await updates(s, 2))
      expect(st).toMatchObject({
        state: 'TASK_ERROR',
        message: expect.stringMatching(/LAUNCH_GROUP is not supported/),
      });
    expect(inner.launched).toHaveLength(0);
    s.close();
  });

  it("holds the executor resources beside the tasks', once, until the last task ends; one executor id runs one group", async () => {
    const { base, s, fwId, master, runner } = await framework();
    let offer = (await s.next('OFFERS')).offers.offers[0];
    await call(
      base,
      launchGroup(fwId, offer, [groupTask(offer, 'h1', 1), groupTask(offer, 'h2', 1)]),
      s.streamId,
    );
    await updates(s, 2);
    const cpus = () =>
      master.state().hosts[0]!.unreserved_resources.find((r) => r.name === 'cpus')?.scalar?.value;
    expect(cpus()).toBeCloseTo(4 - 2 - 0.1);
    offer = (await s.next('OFFERS')).offers.offers[0];
    await call(base, launchGroup(fwId, offer, [groupTask(offer, 'h3', 0.1)]), s.streamId);
    expect((await s.next('UPDATE')).update.status.message).toMatch(
      /Executor 'exec-1' is already running a task group/,
    );
    // a KILL of one task of the group kills the group
    await call(
      base,
      { type: 'KILL', framework_id: { value: fwId }, kill: { task_id: { value: 'h1' } } },
      s.streamId,
    );
    expect(runner.kills).toEqual([`${fwId}/h1`]);
    expect(master.taskState(fwId, 'h1')).toBe('TASK_KILLED');
    expect(master.taskState(fwId, 'h2')).toBe('TASK_KILLED');
    expect(cpus()).toBeCloseTo(4);
    s.close();
  });
});
