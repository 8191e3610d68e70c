// The endpoint's allocation rules, on MesosMaster directly (no HTTP): dominant resource fairness
// between frameworks and against waiting workflow steps, a source that already counts the
// endpoint's tasks, per-task overhead (a Pod slot), an ACCEPT racing a capacity change, and
// HTTP Basic credentials and /master/state through the server.
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Offer } from '../offer-adapter/types.ts';
import {
  createMesosMasterServer,
  type EventSink,
  type MesosCompetition,
  MesosMaster,
  type MesosMasterOptions,
} from './master.ts';
import type { Call } from './schemas.ts';
import { FakeTaskRunner, host, StaticOfferSource } from './test-helpers.ts';

// biome-ignore lint/suspicious/noExplicitAny: events as the endpoint sends them
type Ev = any;

const masters: MesosMaster[] = [];
afterEach(() => {
  for (const m of masters.splice(0)) m.stop();
});

function make(opts: Partial<MesosMasterOptions> & { offers: MesosMasterOptions['offers'] }) {
  let n = 0;
  const runner = new FakeTaskRunner({ final: 'hold' });
  const master = new MesosMaster({ runner, newId: () => `id-${++n}`, ...opts });
  masters.push(master);
  return { master, runner };
}

interface Fw {
  id: string;
  streamId: string;
  events: Ev[];
  offers(): Ev[];
  take(): Ev[];
}

function subscribe(master: MesosMaster, name: string): Fw {
  const events: Ev[] = [];
  const sink: EventSink = { send: (e) => events.push(e), close() {} };
  const { frameworkId, streamId } = master.subscribe(
    { type: 'SUBSCRIBE', subscribe: { framework_info: { user: 'u', name } } } as Extract<
      Call,
      { type: 'SUBSCRIBE' }
    >,
    sink,
  );
  let cursor = 0;
  return {
    id: frameworkId,
    streamId,
    events,
    offers: () => events.filter((e) => e.type === 'OFFERS').flatMap((e) => e.offers.offers),
    take: () => {
      const out = events
        .slice(cursor)
        .filter((e) => e.type === 'OFFERS')
        .flatMap((e) => e.offers.offers);
      cursor = events.length;
      return out;
    },
  };
}

function handle(master: MesosMaster, fw: Fw, call: object): void {
  master.handle(
    { framework_id: { value: fw.id }, ...call } as Exclude<Call, { type: 'SUBSCRIBE' }>,
    fw.streamId,
  );
}

function task(id: string, agent: string, cpus: number, mem = 64) {
  return {
    name: id,
    task_id: { value: id },
    agent_id: { value: agent },
    resources: [
      { name: 'cpus', type: 'SCALAR', scalar: { value: cpus } },
      { name: 'mem', type: 'SCALAR', scalar: { value: mem } },
    ],
    command: { value: 'true' },
  };
}

function accept(master: MesosMaster, fw: Fw, offer: Ev, tasks: object[], refuse = 0): void {
  handle(master, fw, {
    type: 'ACCEPT',
    accept: {
      offer_ids: [offer.id],
      operations: [{ type: 'LAUNCH', launch: { task_infos: tasks } }],
      filters: { refuse_seconds: refuse },
    },
  });
}

const GiB = 1024 ** 3;
/** A host with only cpus and memory (nothing left over once both are used). */
function bare(name: string, cpuMillis: number, memoryBytes: number): Offer {
  const h = host(name, cpuMillis, memoryBytes);
  h.resources = { cpuMillis, memoryBytes, diskBytes: 0, gpus: 0 };
  return h;
}
const hosts = (n: number) => Array.from({ length: n }, (_, i) => bare(`n${i}`, 4000, 8 * GiB));

describe('dominant resource fairness between frameworks', () => {
  it('gives each freed host to the framework with the lowest dominant share', () => {
    const source = new StaticOfferSource([]);
    const { master } = make({ offers: source });
    const a = subscribe(master, 'a');
    const b = subscribe(master, 'b');
    // four equal hosts appear at once: they alternate, so both end with half
    source.hosts = hosts(4);
    master.allocate();
    expect(a.take().map((o: Ev) => o.hostname)).toEqual(['n0', 'n2']);
    expect(b.take().map((o: Ev) => o.hostname)).toEqual(['n1', 'n3']);
    const shares = master.shares();
    expect(shares.get(a.id)).toBeCloseTo(0.5);
    expect(shares.get(b.id)).toBeCloseTo(0.5);
  });

  it('offers a host to the framework using less, not to the first subscribed', () => {
    const source = new StaticOfferSource(hosts(2));
    const { master } = make({ offers: source });
    const a = subscribe(master, 'a'); // takes both hosts: nobody else wants them yet
    const [o0, o1] = a.take();
    // a launches a whole host, and declines the other
    accept(master, a, o0, [task('t1', o0.agent_id.value, 4, 8192)]);
    handle(master, a, { type: 'DECLINE', decline: { offer_ids: [o1.id], filters: { refuse_seconds: 0 } } });
    const b = subscribe(master, 'b');
    // n1 is free again: b (share 0) gets it, a (share 0.5) does not, though it came first
    expect(b.take().map((o: Ev) => o.hostname)).toEqual(['n1']);
    master.allocate();
    expect(a.take()).toEqual([]);
  });
});

describe('fairness against waiting workflow steps', () => {
  it('offers nothing to a framework whose share is above the steps while steps wait', () => {
    const source = new StaticOfferSource(hosts(4));
    const competition: MesosCompetition & { wait: boolean; s: number } = {
      wait: false,
      s: 0.1,
      waiting() {
        return this.wait;
      },
      share() {
        return this.s;
      },
    };
    const { master } = make({ offers: source, competition });
    const a = subscribe(master, 'a');
    const offers = a.take();
    expect(offers).toHaveLength(4);
    // a runs one whole host: share 0.25; it declines the rest
    accept(master, a, offers[0], [task('t1', offers[0].agent_id.value, 4, 8192)]);
    handle(master, a, {
      type: 'DECLINE',
      decline: { offer_ids: offers.slice(1).map((o: Ev) => o.id), filters: { refuse_seconds: 0 } },
    });
    competition.wait = true; // steps wait with a 0.1 share: a (0.25) gets nothing
    master.allocate();
    expect(a.take()).toEqual([]);
    competition.s = 0.25; // equal shares: a may have offers again
    master.allocate();
    expect(a.take()).toHaveLength(1);
    // an offer raises the share it is counted at: one host at a time while steps wait
    expect(master.shares().get(a.id)).toBeCloseTo(0.5);
  });

  it('offers everything when no step waits', () => {
    const source = new StaticOfferSource(hosts(3));
    const { master } = make({ offers: source, competition: { waiting: () => false, share: () => 0 } });
    expect(subscribe(master, 'a').take()).toHaveLength(3);
  });
});

describe('a source that counts the endpoint tasks, and per-task overhead', () => {
  function podsHost(slots: number): Offer {
    const h = bare('n0', 4000, 8 * GiB);
    h.resources.scalars = { pods: slots };
    return h;
  }

  it('takes one Pod slot per task: a second task over the slots is TASK_ERROR', () => {
    const source = new StaticOfferSource([podsHost(1)]);
    const { master, runner } = make({ offers: source, taskOverhead: { pods: 1 } });
    const a = subscribe(master, 'a');
    const [o] = a.take();
    expect(o.resources).toContainEqual({ name: 'pods', type: 'SCALAR', scalar: { value: 1 }, role: '*' });
    accept(master, a, o, [task('t1', o.agent_id.value, 0.1), task('t2', o.agent_id.value, 0.1)]);
    expect(runner.launched.map((l) => l.task.task_id.value)).toEqual(['t1']);
    const err = a.events.find((e) => e.type === 'UPDATE' && e.update.status.task_id.value === 't2');
    expect(err.update.status).toMatchObject({ state: 'TASK_ERROR', reason: 'REASON_TASK_INVALID' });
    expect(err.update.status.message).toContain('more resources than offered');
  });

  it('does not subtract its tasks again from a source that counts them', () => {
    const counting = Object.assign(new StaticOfferSource(hosts(1)), { countsTasks: true });
    const { master } = make({ offers: counting });
    const a = subscribe(master, 'a');
    const [o] = a.take();
    accept(master, a, o, [task('t1', o.agent_id.value, 1)]);
    // the source did not shrink (a real one would, by the task's hold): the whole host again
    master.allocate();
    const [again] = a.take();
    expect(again.resources.find((r: Ev) => r.name === 'cpus').scalar.value).toBe(4);

    const plain = new StaticOfferSource(hosts(1));
    const m2 = make({ offers: plain }).master;
    const b = subscribe(m2, 'b');
    const [p] = b.take();
    accept(m2, b, p, [task('t1', p.agent_id.value, 1)]);
    m2.allocate();
    expect(b.take()[0].resources.find((r: Ev) => r.name === 'cpus').scalar.value).toBe(3);
  });

  it('refuses an ACCEPT whose capacity was taken since the offer (a step placed there)', () => {
    const source = new StaticOfferSource(hosts(1));
    const { master, runner } = make({ offers: source });
    const a = subscribe(master, 'a');
    const [o] = a.take();
    // before any allocation round, a step takes 3 of the 4 cpus
    source.hosts = [bare('n0', 1000, 8 * GiB)];
    accept(master, a, o, [task('t1', o.agent_id.value, 2)]);
    expect(runner.launched).toEqual([]);
    expect(a.events.some((e) => e.type === 'RESCIND' && e.rescind.offer_id.value === o.id.value)).toBe(true);
    const lost = a.events.find((e) => e.type === 'UPDATE');
    expect(lost.update.status).toMatchObject({ state: 'TASK_LOST', reason: 'REASON_INVALID_OFFERS' });
    expect(master.record.rescinded).toEqual([
      { frameworkId: a.id, offerId: o.id.value, why: 'capacity taken' },
    ]);
  });
});

describe('a stopped endpoint (the operator stopped leading)', () => {
  it('takes no call: 503 No leader elected, so no task is launched', () => {
    const { master, runner } = make({ offers: new StaticOfferSource(hosts(1)) });
    const a = subscribe(master, 'a');
    const [o] = a.take();
    master.stop();
    const status = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        return (err as { status?: number; message: string }).status;
      }
      return 'taken';
    };
    expect(status(() => accept(master, a, o, [task('t1', o.agent_id.value, 1)]))).toBe(503);
    expect(status(() => subscribe(master, 'b'))).toBe(503);
    expect(runner.launched).toEqual([]);
  });
});

describe('HTTP Basic credentials and /master/state', () => {
  it('answers 401 without the right Authorization on every route but GET /version', async () => {
    const { master } = make({ offers: new StaticOfferSource(hosts(1)) });
    const app = createMesosMasterServer(master, { credentials: { principal: 'fw', secret: 'pw' } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
      const sub = JSON.stringify({
        type: 'SUBSCRIBE',
        subscribe: { framework_info: { user: 'u', name: 'n' } },
      });
      for (const auth of [
        undefined,
        basic('fw:wrong'),
        basic('other:pw'),
        basic('fw:pw ').trim() + 'x',
        'Bearer pw',
        basic('fw:pw').toLowerCase(),
      ]) {
        for (const path of ['/api/v1/scheduler', '/master/api/v1/scheduler']) {
          const res = await fetch(`${base}${path}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) },
            body: sub,
          });
          expect(res.status, `${path} with ${auth}`).toBe(401);
          expect(res.headers.get('www-authenticate')).toBe('Basic realm="mesos"');
        }
        expect(
          (await fetch(`${base}/master/state`, auth ? { headers: { authorization: auth } } : {})).status,
        ).toBe(401);
      }
      expect(master.frameworkIds()).toEqual([]);
      expect((await fetch(`${base}/version`)).status).toBe(200);
      const ac = new AbortController();
      const ok = await fetch(`${base}/api/v1/scheduler`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: basic('fw:pw') },
        body: sub,
        signal: ac.signal,
      });
      expect(ok.status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
      const state = (await (
        await fetch(`${base}/master/state`, { headers: { authorization: basic('fw:pw') } })
      ).json()) as Ev;
      expect(state.frameworks).toEqual([
        { id: master.frameworkIds()[0], name: 'n', active: true, tasks: [] },
      ]);
      expect(state.hosts.map((h: Ev) => h.hostname)).toEqual(['n0']);
      ac.abort();
    } finally {
      await app.close();
    }
  });
});
