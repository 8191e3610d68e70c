import { describe, expect, it } from 'vitest';
import type { OfferSource } from '../controller/controller.ts';
import { RoutingLauncher } from '../launchers/routing.ts';
import type { AttemptKey, Launcher, LaunchRecord, LaunchRequest } from '../launchers/types.ts';
import { CompositeOfferSource } from './composite.ts';
import { LocalOfferSource } from './local.ts';
import type { Offer, ResourceRequest } from './types.ts';

const req = (cpuMillis: number): ResourceRequest => ({ cpuMillis, memoryBytes: 0, diskBytes: 0, gpus: 0 });

class FakeSource implements OfferSource {
  readonly source = 'mesos' as const;
  readonly hostname = 'mesos';
  hosts: string[];
  holds: [string, number, string | undefined][] = [];
  releases: string[] = [];
  constructor(hosts: string[]) {
    this.hosts = hosts;
  }
  offers(): Offer[] {
    return this.hosts.map((h, i) => ({
      id: `m${i}`,
      source: 'mesos',
      hostname: h,
      agentId: `agent-${h}`,
      resources: { cpuMillis: 1000, memoryBytes: 2 ** 30, diskBytes: 0, gpus: 0 },
      attributes: { 'meson.dev/source': 'mesos' },
    }));
  }
  hold(taskId: string, r: ResourceRequest, node?: string) {
    this.holds.push([taskId, r.cpuMillis, node]);
  }
  release(taskId: string) {
    this.releases.push(taskId);
  }
}

function setup(mesosHosts = ['box', 'agent-2']) {
  const local = new LocalOfferSource({
    hostname: 'box',
    capacity: { cpuMillis: 4000, memoryBytes: 2 ** 33 },
  });
  const mesos = new FakeSource(mesosHosts);
  const composite = new CompositeOfferSource([{ source: local }, { source: mesos }]);
  return { local, mesos, composite };
}

describe('CompositeOfferSource', () => {
  it('merges the members, keeping each offer source and never merging two members hosts', () => {
    const { composite } = setup();
    const offers = composite.offers(1);
    expect(offers.map((o) => [o.source, o.hostname])).toEqual([
      ['local', 'box'],
      ['mesos', 'mesos/box'],
      ['mesos', 'mesos/agent-2'],
    ]);
    expect(composite.source).toBe('local');
    expect(composite.hostname).toBe('box');
  });

  it('routes a node to its member by the longest prefix, and hides hosts that would be misrouted', () => {
    const { composite, mesos } = setup(['x', 'local-lookalike']);
    expect(composite.memberOf('mesos/x')).toMatchObject({ index: 1, host: 'x' });
    expect(composite.memberOf('box')).toMatchObject({ index: 0, host: 'box' });
    expect(composite.memberOf(undefined)).toMatchObject({ index: 0, host: 'box' });
    // the placement's source the controller records
    expect(composite.sourceOf('mesos/x')).toBe('mesos');
    expect(composite.sourceOf('box')).toBe('local');
    // a first-member host whose name starts like the Mesos prefix would be launched on Mesos
    const local = new FakeSource(['mesos/evil', 'fine']);
    const c = new CompositeOfferSource([{ source: local }, { source: mesos }]);
    expect(c.offers(0).map((o) => o.hostname)).toEqual(['fine', 'mesos/x', 'mesos/local-lookalike']);
    expect(
      () =>
        new CompositeOfferSource([
          { source: mesos, prefix: 'a/' },
          { source: mesos, prefix: 'a/' },
        ]),
    ).toThrow(/share the host prefix/);
    expect(() => new CompositeOfferSource([])).toThrow(/at least one/);
  });

  it('keeps a hold until the task is bound to a node, then holds it on that member only', () => {
    const { composite, local, mesos } = setup();
    composite.hold('t1', req(1000));
    composite.hold('t2', req(500));
    expect(local.usage().cpuMillis).toBe(0);
    composite.bind('t1', 'mesos/agent-2');
    composite.bind('t2', 'box');
    expect(mesos.holds).toEqual([['t1', 1000, 'agent-2']]);
    expect(local.usage().cpuMillis).toBe(500);
    composite.release('t1');
    composite.release('t2');
    composite.release('unknown');
    expect(mesos.releases).toEqual(['t1']);
    expect(local.usage().cpuMillis).toBe(0);
    // a hold given its node goes straight to the member; a released pending hold is forgotten
    composite.hold('t3', req(100), 'mesos/box');
    expect(mesos.holds.at(-1)).toEqual(['t3', 100, 'box']);
    composite.hold('t4', req(100));
    composite.release('t4');
    composite.bind('t4', 'box');
    expect(local.usage().cpuMillis).toBe(0);
  });

  it('says a request never fits only when every member says so', () => {
    const { composite } = setup();
    expect(composite.neverFits(req(64_000))).toBeUndefined(); // a Mesos cluster may grow
    const a = new LocalOfferSource({ hostname: 'a', capacity: { cpuMillis: 1000 } });
    const b = new LocalOfferSource({ hostname: 'b', capacity: { cpuMillis: 2000 } });
    const c = new CompositeOfferSource([{ source: a }, { source: b, prefix: 'b/' }]);
    expect(c.neverFits(req(1500))).toBeUndefined();
    expect(c.neverFits(req(3000))).toMatch(/cpus 3 \(the machine has 1\).*; .*cpus 3 \(the machine has 2\)/);
  });
});

class FakeLauncher implements Launcher {
  calls: string[] = [];
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
  prepare(r: LaunchRequest): LaunchRecord {
    this.calls.push(`prepare ${r.instance}`);
    return { launchId: `${this.name}-${r.instance}`, launchedAt: 1 };
  }
  launch(r: LaunchRequest, rec: LaunchRecord) {
    this.calls.push(`launch ${r.instance} ${rec.node}`);
  }
  adopt(k: AttemptKey, rec: LaunchRecord) {
    this.calls.push(`adopt ${k.instance} ${rec.node}`);
  }
  kill(k: AttemptKey) {
    this.calls.push(`kill ${k.instance}`);
  }
  close() {
    this.calls.push('close');
  }
}

describe('RoutingLauncher', () => {
  it("launches, adopts and kills on the launcher of the placement's source, binding its hold", () => {
    const { composite, mesos, local } = setup();
    const l0 = new FakeLauncher('local');
    const l1 = new FakeLauncher('mesos');
    const r = new RoutingLauncher(composite, [l0, l1]);
    const request = (instance: string): LaunchRequest => ({
      namespace: 'ns',
      run: 'r',
      instance,
      attempt: 1,
      workflow: 'wf',
      step: { name: instance, type: 'shell', shell: { script: 'true' } },
    });
    const a = request('a');
    const rec = r.prepare(a);
    expect(rec.launchId).toBe('local-a'); // the node is not known yet: the first launcher prepares
    composite.hold('ns/r/a', req(250));
    rec.node = 'mesos/agent-2';
    r.launch(a, rec);
    expect(mesos.holds).toEqual([['ns/r/a', 250, 'agent-2']]);
    composite.hold('ns/r/b', req(250));
    r.adopt(request('b'), { launchId: 'x', launchedAt: 0, node: 'box' }, request('b'));
    expect(local.usage().cpuMillis).toBe(250);
    r.kill(a, rec);
    r.kill(request('c'), { launchId: 'y', launchedAt: 0 }); // no node recorded: the first source's host
    r.close();
    expect(l0.calls).toEqual(['prepare a', 'adopt b box', 'kill c', 'close']);
    expect(l1.calls).toEqual(['launch a mesos/agent-2', 'kill a', 'close']);
  });
});
