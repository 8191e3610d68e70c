// The controller's hooks for offer sources other than the local machine (a Mesos master, through
// createStandalone's wrapSources): a pass on demand (offersChanged), the queue length after each
// pass (onQueued), the placement's source taken from its node, and a step's constraints.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { addWorkflow, finished, reportKilled, startRun, until } from '../../test/support/standalone-runs.ts';
import { RoutingLauncher } from '../launchers/routing.ts';
import {
  type AttemptKey,
  type AttemptUpdate,
  attemptKey,
  type Launcher,
  type LaunchRecord,
  type LaunchRequest,
} from '../launchers/types.ts';
import { createMetrics } from '../metrics/index.ts';
import { CompositeOfferSource } from '../offer-adapter/composite.ts';
import type { Offer, ResourceRequest } from '../offer-adapter/types.ts';
import type { ControllerObserver, Logger, OfferSource } from './controller.ts';
import { createStandalone, type Standalone } from './standalone.ts';

const GiB = 1024 ** 3;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** Hosts of a second source ("mesos"), each offered whole at every pass; nothing is accounted. */
class FakeMesos implements OfferSource {
  readonly source = 'mesos' as const;
  readonly hostname = 'mesos';
  hosts: { name: string; attributes?: Record<string, string>; taints?: Offer['taints'] }[] = [];
  private gen = 0;
  offers(): Offer[] {
    this.gen++;
    return this.hosts.map((h) => ({
      id: `${h.name}-${this.gen}`,
      source: 'mesos',
      hostname: h.name,
      agentId: `agent-${h.name}`,
      resources: { cpuMillis: 4000, memoryBytes: 8 * GiB, diskBytes: 10 * GiB, gpus: 0 },
      attributes: { ...h.attributes, 'meson.dev/source': 'mesos' },
      ...(h.taints ? { taints: h.taints } : {}),
    }));
  }
  hold(_id: string, _req: ResourceRequest): void {}
  release(_id: string): void {}
}

/** Runs every attempt at once: running, then Succeeded (or Failed when killed). */
class FakeLauncher implements Launcher {
  launched: { instance: string; node?: string; tolerations?: LaunchRequest['tolerations'] }[] = [];
  /** Each `settled` call: the attempt, and its step's phase in the store at that moment. */
  settledCalls: { instance: string; attempt: number; storedPhase: string | undefined }[] = [];
  storedPhase: (key: AttemptKey) => string | undefined = () => undefined;
  private n = 0;
  private readonly onUpdate: (u: AttemptUpdate) => void;
  constructor(onUpdate: (u: AttemptUpdate) => void) {
    this.onUpdate = onUpdate;
  }
  prepare(): LaunchRecord {
    return { launchId: `fake-${++this.n}`, launchedAt: Date.now() };
  }
  launch(req: LaunchRequest, record: LaunchRecord): void {
    const key = attemptKey(req);
    this.launched.push({
      instance: req.instance,
      ...(record.node ? { node: record.node } : {}),
      ...(req.tolerations ? { tolerations: req.tolerations } : {}),
    });
    const status = { launchId: record.launchId, pid: 0, milestones: {} };
    setImmediate(() => {
      this.onUpdate({ type: 'running', key, status: { ...status, phase: 'Running' } });
      this.onUpdate({ type: 'finished', key, status: { ...status, phase: 'Succeeded' } });
    });
  }
  adopt(): void {}
  settled(key: AttemptKey): void {
    this.settledCalls.push({
      instance: key.instance,
      attempt: key.attempt,
      storedPhase: this.storedPhase(key),
    });
  }
  kill(key: AttemptKey, record: LaunchRecord): void {
    reportKilled(this.onUpdate, key, record);
  }
  close(): void {}
}

function setup(localCpuMillis = 0, observer?: ControllerObserver) {
  const root = mkdtempSync(join(tmpdir(), 'meson-sources-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const mesos = new FakeMesos();
  mesos.hosts = [{ name: 'agent-1', attributes: { rack: 'r1' } }];
  const queued: number[] = [];
  const logs: { msg: string; obj: Record<string, unknown> }[] = [];
  const logger: Logger = {
    info: (obj, msg) => logs.push({ msg: msg ?? '', obj: obj as Record<string, unknown> }),
    warn() {},
    error() {},
    debug() {},
  };
  let fake: FakeLauncher | undefined;
  const s: Standalone = createStandalone({
    dataDir: root,
    logger,
    capacity: { cpuMillis: localCpuMillis, memoryBytes: 8 * GiB },
    hostname: 'box',
    retention: false,
    triggers: false,
    ...(observer ? { observer } : {}),
    wrapSources: (local, ctl) => {
      const offers = new CompositeOfferSource([{ source: local.offers }, { source: mesos }]);
      fake = new FakeLauncher(ctl.onUpdate);
      return {
        offers,
        launcher: new RoutingLauncher(offers, [local.launcher, fake]),
        onQueued: (n) => queued.push(n),
      };
    },
  });
  cleanups.push(() => s.stop());
  s.start();
  return { s, mesos, queued, logs, fake: fake!, store: s.store };
}

function steps(s: Standalone, run: string) {
  return Object.fromEntries(
    s.store
      .getStepInstances('default', run)
      .items.map((i) => [
        i.id,
        i.data as { phase: string; placement?: { source: string; node?: string }; message?: string },
      ]),
  );
}

describe('controller hooks for other offer sources', () => {
  it('records the source of the node a step ran on, and sends a step to Mesos by attribute', async () => {
    const { s, fake } = setup(4000);
    addWorkflow(s, 'wf', {
      sequence: [
        { step: { name: 'here', shell: { script: 'true' } } },
        {
          step: {
            name: 'there',
            shell: { script: 'true' },
            constraints: { attributes: { 'meson.dev/source': 'mesos' } },
          },
        },
        { step: { name: 'rack', shell: { script: 'true' }, constraints: { nodeSelector: { rack: 'r1' } } } },
      ],
    });
    const run = startRun(s, 'wf');
    const done = await finished(s, run.metadata.name);
    const st = steps(s, run.metadata.name);
    expect(done.status?.phase, JSON.stringify(st)).toBe('Succeeded');
    // the local machine has room, so the unconstrained step ran there
    expect(st.here?.placement).toEqual({ source: 'local', node: 'box' });
    expect(st.there?.placement).toEqual({ source: 'mesos', node: 'mesos/agent-1' });
    expect(st.rack?.placement).toEqual({ source: 'mesos', node: 'mesos/agent-1' });
    expect(fake.launched.map((l) => l.instance)).toEqual(['there', 'rack']);
  });

  it('places by required node affinity and tolerations, and hands the tolerations to the launch (its Pod)', async () => {
    const { s, fake, mesos } = setup(0);
    mesos.hosts = [
      { name: 'agent-1', attributes: { rack: 'r1' } },
      { name: 'agent-2', attributes: { rack: 'r2' } },
      {
        name: 'gpu-1',
        attributes: { rack: 'r3' },
        taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }],
      },
    ];
    const affinity = (values: string[]) => ({
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'rack', operator: 'In' as const, values }] }],
      },
    });
    addWorkflow(s, 'placed', {
      sequence: [
        { step: { name: 'r2', shell: { script: 'true' }, constraints: { nodeAffinity: affinity(['r2']) } } },
        {
          step: {
            name: 'gpu',
            shell: { script: 'true' },
            constraints: {
              nodeAffinity: affinity(['r3']),
              tolerations: [{ key: 'gpu', operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
            },
          },
        },
      ],
    });
    const run = startRun(s, 'placed');
    const done = await finished(s, run.metadata.name);
    const st = steps(s, run.metadata.name);
    expect(done.status?.phase, JSON.stringify(st)).toBe('Succeeded');
    expect(st.r2?.placement).toEqual({ source: 'mesos', node: 'mesos/agent-2' });
    expect(st.gpu?.placement).toEqual({ source: 'mesos', node: 'mesos/gpu-1' });
    expect(fake.launched.find((l) => l.instance === 'gpu')?.tolerations).toEqual([
      { key: 'gpu', operator: 'Equal', value: 'true', effect: 'NoSchedule' },
    ]);
    // without the toleration the tainted host is refused, and the reason says so
    addWorkflow(s, 'untolerated', {
      step: { name: 'a', shell: { script: 'true' }, constraints: { nodeAffinity: affinity(['r3']) } },
    });
    const stuck = startRun(s, 'untolerated');
    const why = await until(() => s.controller.whyQueued('default', stuck.metadata.name)[0], 'a reason');
    expect(why.reasons.join('; ')).toMatch(/taint|affinity/);
  });

  it('reports its scheduling to the metrics: placements, offers by source, time in queue', async () => {
    const metrics = createMetrics({ processMetrics: false });
    const { s } = setup(4000, metrics.controller);
    addWorkflow(s, 'counted', {
      sequence: [
        { step: { name: 'here', shell: { script: 'true' } } },
        { step: { name: 'there', shell: { script: 'true' }, constraints: { attributes: { rack: 'r1' } } } },
      ],
    });
    const run = startRun(s, 'counted');
    expect((await finished(s, run.metadata.name)).status?.phase).toBe('Succeeded');
    const body = (await metrics.scrape()).body;
    const sample = (series: string) =>
      Number(
        body
          .split('\n')
          .find((l) => l.startsWith(`${series} `))
          ?.slice(series.length + 1),
      );
    expect(sample('meson_scheduler_placements_total')).toBe(2);
    expect(sample('meson_step_queue_seconds_count')).toBe(2);
    expect(sample('meson_scheduler_pass_duration_seconds_count')).toBeGreaterThanOrEqual(2);
    expect(sample('meson_offers{source="local"}')).toBeGreaterThanOrEqual(0);
    expect(body).toMatch(/^meson_offers\{source="mesos"\} \d+$/m);
  });

  it('keeps a step whose constraints no offer meets queued, saying which constraint', async () => {
    const { s, logs } = setup(4000);
    addWorkflow(s, 'gpu', {
      step: { name: 'a', shell: { script: 'true' }, constraints: { attributes: { rack: 'r9' } } },
    });
    const run = startRun(s, 'gpu');
    const why = await until(() => s.controller.whyQueued('default', run.metadata.name)[0], 'a reason');
    expect(why.instance).toBe('a');
    expect(why.reasons.join('; ')).toMatch(/attribute rack in \(r9\): 2 of 2 hosts did not match/);
    expect(steps(s, run.metadata.name).a?.phase).toBe('Queued');
    // said once in the log, not at every pass
    s.controller.offersChanged();
    await s.controller.idle();
    const said = logs.filter((l) => l.msg === 'step queued: no offer can take it');
    expect(said).toHaveLength(1);
    expect(said[0]?.obj).toMatchObject({ step: 'a', reason: expect.stringContaining('rack in (r9)') });
    expect(s.controller.whyQueued('default', 'no-such-run')).toEqual([]);
  });

  it('reports the queue after each pass, and runs a pass when offers change', async () => {
    const { s, mesos, queued } = setup(0);
    await until(() => queued.length > 0, 'a first report');
    expect(queued.at(-1)).toBe(0);
    mesos.hosts = []; // no offers anywhere: the step waits
    addWorkflow(s, 'wf', { step: { name: 'a', shell: { script: 'true' } } });
    const run = startRun(s, 'wf');
    await until(() => queued.at(-1) === 1, 'one task queued');
    await s.controller.idle();
    await new Promise((r) => setTimeout(r, 100));
    expect(steps(s, run.metadata.name).a?.phase).toBe('Queued'); // nothing else triggers a pass
    mesos.hosts = [{ name: 'agent-2' }];
    s.controller.offersChanged();
    const done = await finished(s, run.metadata.name);
    expect(done.status?.phase).toBe('Succeeded');
    expect(steps(s, run.metadata.name).a?.placement).toEqual({ source: 'mesos', node: 'mesos/agent-2' });
    await until(() => queued.at(-1) === 0, 'the queue to empty again');
  });

  it('spreads the instances of a uniqueHost step over hosts, the rest waiting for a free one', async () => {
    const { s, mesos } = setup(0);
    mesos.hosts = [{ name: 'm1' }, { name: 'm2' }];
    addWorkflow(s, 'fe', {
      foreach: {
        items: 'range(3)',
        as: 'i',
        do: { step: { name: 'x', shell: { script: 'true' }, constraints: { uniqueHost: true } } },
      },
    });
    const run = startRun(s, 'fe');
    const done = await finished(s, run.metadata.name);
    expect(done.status?.phase).toBe('Succeeded');
    const nodes = Object.values(steps(s, run.metadata.name)).map((x) => x.placement?.node);
    expect(nodes).toHaveLength(3);
    expect(new Set(nodes)).toEqual(new Set(['mesos/m1', 'mesos/m2']));
  });
});

describe('constraints on the standalone machine alone', () => {
  it('fails at once a step whose constraints the machine cannot meet, rather than queueing it forever', async () => {
    const root = mkdtempSync(join(tmpdir(), 'meson-sources-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const s = createStandalone({ dataDir: root, hostname: 'box', retention: false, triggers: false });
    cleanups.push(() => s.stop());
    s.start();
    addWorkflow(s, 'wf', {
      sequence: [
        {
          step: {
            name: 'local',
            shell: { script: 'true' },
            constraints: { nodeSelector: { 'meson.dev/source': 'local' } },
          },
        },
        {
          step: {
            name: 'mesos',
            shell: { script: 'true' },
            constraints: { attributes: { 'meson.dev/source': 'mesos' } },
          },
        },
      ],
    });
    const run = startRun(s, 'wf');
    const done = await finished(s, run.metadata.name);
    const st = steps(s, run.metadata.name);
    expect(done.status?.phase).toBe('Failed');
    expect(st.mesos?.message).toMatch(
      /cannot run on this machine: its constraints ask for meson.dev\/source in \(mesos\)/,
    );
    expect(st.local?.phase).toBe('Succeeded');
  });

  it('tells the launcher an attempt is settled only once its end is committed, once per attempt', async () => {
    const { s, fake } = setup(0);
    fake.storedPhase = (key) =>
      (
        s.store.getStepInstances(key.namespace, key.run).items.find((i) => i.id === key.instance)?.data as
          | { phase?: string }
          | undefined
      )?.phase;
    addWorkflow(s, 'wide', {
      foreach: { items: 'range(5)', as: 'i', do: { step: { name: 'each', shell: { script: 'true' } } } },
    });
    const run = startRun(s, 'wide');
    const done = await finished(s, run.metadata.name);
    expect(done.status?.phase).toBe('Succeeded');
    await until(() => fake.settledCalls.length >= 5 || undefined, 'five settled attempts');
    expect(fake.settledCalls).toHaveLength(5);
    expect(new Set(fake.settledCalls.map((c) => c.instance)).size).toBe(5);
    // the end was in the store when the launcher was told: a new leader would not adopt it
    for (const c of fake.settledCalls) expect(c.storedPhase).toBe('Succeeded');
  });
});
