import { describe, expect, it } from 'vitest';
import { MesosOfferPool, type MesosSchedulerClient, SOURCE_ATTRIBUTE } from './mesos-pool.ts';
import type { Offer } from './types.ts';

class Client implements MesosSchedulerClient {
  list: Offer[] = [];
  calls: string[] = [];
  offers() {
    return this.list;
  }
  async accept() {}
  async decline(ids: string[], refuse: number) {
    this.list = this.list.filter((o) => !ids.includes(o.id));
    this.calls.push(`DECLINE ${ids.join(',')} ${refuse}`);
  }
  async revive() {
    this.calls.push('REVIVE');
  }
  async suppress() {
    this.calls.push('SUPPRESS');
  }
  async kill() {}
  async reconcile() {}
}

function offer(id: string, hostname: string, receivedAt = 0): Offer {
  return {
    id,
    source: 'mesos',
    hostname,
    agentId: `a-${hostname}`,
    resources: { cpuMillis: 1000, memoryBytes: 0, diskBytes: 0, gpus: 0 },
    attributes: { rack: 'r1' },
    receivedAt,
  };
}

function setup() {
  let now = 0;
  const client = new Client();
  const pool = new MesosOfferPool({
    client,
    tickMs: 0,
    declineAfterMs: 1000,
    offerHoldMs: 5000,
    refuseSeconds: 7,
    now: () => now,
  });
  return { client, pool, at: (t: number) => (now = t) };
}

describe('MesosOfferPool', () => {
  it('offers the master offers tagged with their source, and spends a host at take', () => {
    const { client, pool } = setup();
    client.list = [offer('o1', 'h1'), offer('o2', 'h1'), offer('o3', 'h2')];
    expect(pool.offers(0).map((o) => [o.id, o.attributes])).toEqual([
      ['o1', { rack: 'r1', [SOURCE_ATTRIBUTE]: 'mesos' }],
      ['o2', { rack: 'r1', [SOURCE_ATTRIBUTE]: 'mesos' }],
      ['o3', { rack: 'r1', [SOURCE_ATTRIBUTE]: 'mesos' }],
    ]);
    expect(pool.take('h1').map((o) => o.id)).toEqual(['o1', 'o2']);
    expect(pool.take('h1')).toEqual([]);
    expect(pool.offers(0).map((o) => o.id)).toEqual(['o3']);
    // rescinded between the pass and the launch: nothing to take
    client.list = [];
    expect(pool.take('h2')).toEqual([]);
  });

  it('keeps the offers of a host placed on until the launch takes them, however slow the commit', () => {
    const { client, pool, at } = setup();
    const req = { cpuMillis: 100, memoryBytes: 0, diskBytes: 0, gpus: 0 };
    client.list = [offer('o1', 'h1', 0), offer('o2', 'h2', 0)];
    pool.offers(0);
    at(900);
    // placed on h1 just before its offer would be declined; the launch comes 2 s later
    pool.hold('t1', req, 'h1');
    at(2900);
    pool.tick();
    expect(client.calls).toEqual(['DECLINE o2 7']);
    expect(pool.take('h1').map((o) => o.id)).toEqual(['o1']);
    // a placement released without a launch (its run stopped) leaves its host declinable again
    client.list.push(offer('o3', 'h3', 2900));
    pool.offers(2900);
    pool.hold('t3', req, 'h3');
    pool.release('t3');
    at(3900);
    pool.tick();
    expect(client.calls).toEqual(['DECLINE o2 7', 'DECLINE o3 7']);
    // placed on an offer received long ago (4.9 s, no pass had seen it): kept too
    client.list.push(offer('o5', 'h5', 0));
    at(4900);
    pool.offers(4900);
    pool.hold('t5', req, 'h5');
    at(5400);
    pool.tick();
    expect(client.calls).toHaveLength(2);
    expect(pool.take('h5').map((o) => o.id)).toEqual(['o5']);
    // a launch that never comes: offerHoldMs after the placement still bounds the offer
    client.list.push(offer('o4', 'h4', 5400));
    pool.offers(5400);
    pool.hold('t4', req, 'h4');
    at(10_399);
    pool.tick();
    expect(client.calls).toHaveLength(2);
    at(10_400);
    pool.tick();
    expect(client.calls.at(-1)).toBe('DECLINE o4 7');
  });

  it('declines with refuse_seconds what a pass saw and left, and what no pass saw for too long', () => {
    const { client, pool, at } = setup();
    client.list = [offer('seen', 'h1', 0)];
    pool.offers(0);
    client.list.push(offer('unseen', 'h2', 0));
    at(999);
    pool.tick();
    expect(client.calls).toEqual([]);
    at(1000);
    pool.tick();
    expect(client.calls).toEqual(['DECLINE seen 7']);
    at(4999);
    pool.tick();
    expect(client.calls).toHaveLength(1);
    at(5000);
    pool.tick();
    expect(client.calls).toEqual(['DECLINE seen 7', 'DECLINE unseen 7']);
  });

  it('suppresses when the queue empties and revives when it fills after a suppression or declines', () => {
    const { client, pool, at } = setup();
    pool.demand(3);
    expect(client.calls).toEqual([]); // nothing suppressed or declined: no REVIVE
    pool.demand(0);
    pool.demand(0);
    expect(client.calls).toEqual(['SUPPRESS']);
    expect(pool.isSuppressed).toBe(true);
    pool.demand(1);
    pool.demand(2);
    expect(client.calls).toEqual(['SUPPRESS', 'REVIVE']);
    client.list = [offer('o', 'h', 0)];
    pool.offers(0);
    at(2000);
    pool.tick();
    pool.demand(1);
    expect(client.calls).toEqual(['SUPPRESS', 'REVIVE', 'DECLINE o 7', 'REVIVE']);
  });

  it('sends SUPPRESS or REVIVE again when the call failed (not subscribed yet, refused)', async () => {
    const { client, pool } = setup();
    let fail = true;
    client.suppress = async () => {
      client.calls.push('SUPPRESS');
      if (fail) throw new Error('not subscribed to a Mesos master');
    };
    client.revive = async () => {
      client.calls.push('REVIVE');
      if (fail) throw new Error('REVIVE answered 503');
    };
    pool.demand(0);
    await new Promise((r) => setImmediate(r));
    expect(pool.isSuppressed).toBe(false);
    fail = false;
    pool.demand(0);
    expect(client.calls).toEqual(['SUPPRESS', 'SUPPRESS']);
    fail = true;
    pool.demand(1);
    await new Promise((r) => setImmediate(r));
    fail = false;
    pool.demand(1); // the failed REVIVE is sent again
    pool.demand(1);
    expect(client.calls).toEqual(['SUPPRESS', 'SUPPRESS', 'REVIVE', 'REVIVE']);
  });

  it('says again what the queue needs after a new subscription (the master forgot the SUPPRESS)', () => {
    const { client, pool } = setup();
    pool.demand(0);
    pool.subscribed();
    pool.demand(0);
    expect(client.calls).toEqual(['SUPPRESS', 'SUPPRESS']);
    pool.subscribed();
    pool.demand(2);
    expect(client.calls).toEqual(['SUPPRESS', 'SUPPRESS', 'REVIVE']);
  });

  it('holds what a placement granted, for its TaskInfo', () => {
    const { pool } = setup();
    pool.hold('t', { cpuMillis: 5, memoryBytes: 0, diskBytes: 0, gpus: 0 });
    expect(pool.granted('t')?.cpuMillis).toBe(5);
    pool.release('t');
    expect(pool.granted('t')).toBeUndefined();
  });

  it('never merges two agents that share a host name into one placement target', () => {
    const { client, pool } = setup();
    const twin = { ...offer('o2', 'h1'), agentId: 'other-agent' };
    client.list = [offer('o1', 'h1'), twin, offer('o3', 'h1')];
    expect(pool.offers(0).map((o) => [o.id, o.hostname])).toEqual([
      ['o1', 'h1'],
      ['o2', 'h1@other-agent'],
      ['o3', 'h1'],
    ]);
    expect(pool.take('h1@other-agent').map((o) => [o.id, o.agentId])).toEqual([['o2', 'other-agent']]);
    expect(pool.take('h1').map((o) => o.agentId)).toEqual(['a-h1', 'a-h1']);
  });
});
