// The controller acting on the scheduler's evictions: a higher-tier step of a namespace the admin
// let preempt evicts a lower-tier running step (killed once through the launcher), the why is
// recorded on the victim step, the victim is retried without using up its retries, and both end
// up placed. A fake launcher keeps attempts running until the test ends them; the clock is fake.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DefinitionNode, StepInstanceStatus, Workflow, WorkflowRun } from '../crds/index.ts';
import {
  type AttemptKey,
  type AttemptUpdate,
  attemptKey,
  type Launcher,
  type LaunchRecord,
  type LaunchRequest,
} from '../launchers/types.ts';
import { LocalOfferSource } from '../offer-adapter/local.ts';
import { SqliteStore } from '../store/sqlite.ts';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import { Controller, type ControllerObserver, type Logger } from './controller.ts';
import type { PreemptionSettings } from './preemption.ts';
import { createStandalone } from './standalone.ts';
import { ensureVersion } from './workflows.ts';

const GiB = 1024 ** 3;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** Attempts run until the test finishes them; kills are counted and reported as Failed. */
class HoldingLauncher implements Launcher {
  readonly launched: { run: string; instance: string; attempt: number; node?: string }[] = [];
  readonly kills: string[] = [];
  /** Kills that throw before the launcher gives up throwing. */
  failKills = 0;
  /** Kills that are "lost": nothing is reported (a Pod delete the API server never did). */
  loseKills = 0;
  private readonly running = new Map<string, { key: AttemptKey; record: LaunchRecord }>();
  private n = 0;
  onUpdate: (u: AttemptUpdate) => void = () => {};
  prepare(): LaunchRecord {
    return { launchId: `l${++this.n}`, launchedAt: 1_000 };
  }
  launch(req: LaunchRequest, record: LaunchRecord): void {
    const key = attemptKey(req);
    this.launched.push({
      run: req.run,
      instance: req.instance,
      attempt: req.attempt,
      ...(record.node ? { node: record.node } : {}),
    });
    this.running.set(`${req.run}/${req.instance}#${req.attempt}`, { key, record });
    setImmediate(() =>
      this.onUpdate({
        type: 'running',
        key,
        status: { launchId: record.launchId, pid: 0, phase: 'Running', milestones: {} },
      }),
    );
  }
  adopt(key: AttemptKey, record: LaunchRecord): void {
    this.running.set(`${key.run}/${key.instance}#${key.attempt}`, { key, record });
  }
  kill(key: AttemptKey): void {
    const id = `${key.run}/${key.instance}#${key.attempt}`;
    this.kills.push(id);
    if (this.failKills > 0) {
      this.failKills--;
      throw new Error('injected: the API server refused the delete');
    }
    if (this.loseKills > 0) {
      this.loseKills--;
      return;
    }
    this.end(id, 'Failed', 'killed');
  }
  /** Ends a running attempt (`run/instance#attempt`). */
  end(id: string, phase: 'Succeeded' | 'Failed' = 'Succeeded', message?: string): void {
    const r = this.running.get(id);
    if (!r) throw new Error(`${id} is not running (running: ${[...this.running.keys()].join(', ')})`);
    this.running.delete(id);
    setImmediate(() =>
      this.onUpdate({
        type: 'finished',
        key: r.key,
        status: {
          launchId: r.record.launchId,
          pid: 0,
          phase,
          ...(message ? { message } : {}),
          milestones: {},
        },
      }),
    );
  }
  isRunning(id: string): boolean {
    return this.running.has(id);
  }
  close(): void {}
}

function harness(preemption?: PreemptionSettings, existing?: { root: string; launcher: HoldingLauncher }) {
  const preempted: string[] = [];
  const observed: { namespace: string; victimTier: number; preemptorTier: number }[] = [];
  const observer: ControllerObserver = {
    schedulingPass() {},
    taskPlaced() {},
    commitFailed() {},
    runCreated() {},
    runStarted() {},
    runFinished() {},
    stepsEnded() {},
    stepPreempted: (o) => observed.push(o),
  };
  const root = existing?.root ?? mkdtempSync(join(tmpdir(), 'meson-preempt-'));
  if (!existing) cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const store = new SqliteStore({ dir: join(root, 'db') });
  const launcher = existing?.launcher ?? new HoldingLauncher();
  const clock = { now: Date.parse('2026-03-01T00:00:00Z') };
  const logs: { msg: string; obj: Record<string, unknown> }[] = [];
  const log = (obj: object, msg?: string) =>
    logs.push({ msg: msg ?? '', obj: obj as Record<string, unknown> });
  const logger: Logger = { info: log, warn: log, error: log, debug() {} };
  const controller = new Controller({
    store: new SqliteAsyncStore(store),
    launcher,
    offers: new LocalOfferSource({ hostname: 'node-1', capacity: { cpuMillis: 2000, memoryBytes: 4 * GiB } }),
    now: () => clock.now,
    logger,
    ...(preemption ? { preemption } : {}),
    observer,
    hooks: {
      stepPreempted: (run, p) => preempted.push(`${run.metadata.name}/${p.step}#${p.attempt}: ${p.message}`),
    },
  });
  launcher.onUpdate = (u) => controller.onAttemptUpdate(u);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    controller.stop();
    store.close();
  };
  cleanups.push(stop);
  controller.start();
  return { root, store, launcher, controller, clock, logs, stop, preempted, observed };
}

/** What the helpers below need of a harness or a standalone server. */
type H = { store: SqliteStore; clock: { now: number } };

function addWorkflow(h: H, namespace: string, name: string, step: Record<string, unknown>): void {
  const definition = {
    step: { name: 'work', shell: { script: 'true' }, resources: { cpus: '2', memory: '1Gi' }, ...step },
  } as DefinitionNode;
  const wf = h.store.create<Workflow>('Workflow', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name, namespace },
    spec: { definition } as Workflow['spec'],
  });
  const status = h.store.transaction((w) => ensureVersion(h.store, w, wf, h.clock.now));
  expect(status?.conditions?.[0]).toMatchObject({ type: 'Ready', status: 'True' });
}

function startRun(h: H, namespace: string, workflow: string): string {
  return h.store.create<WorkflowRun>('WorkflowRun', {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'WorkflowRun',
    metadata: { name: `${workflow}-run`, namespace },
    spec: { workflow },
  } as WorkflowRun).metadata.name;
}

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function step(h: H, namespace: string, run: string): StepInstanceStatus | undefined {
  return h.store.getStepInstances(namespace, run).items[0]?.data as StepInstanceStatus | undefined;
}

function phase(h: H, namespace: string, run: string): string | undefined {
  return h.store.get<WorkflowRun>('WorkflowRun', namespace, run)?.status?.phase;
}

const launchedAs = (h: { launcher: HoldingLauncher }) =>
  h.launcher.launched.map((l) => `${l.run}/${l.instance}#${l.attempt}`);

const SETTINGS: PreemptionSettings = {
  namespaces: { prod: { preempt: true, tier: 0 }, batch: { tier: 5 } },
};

describe('Controller: preemption by tier', () => {
  it('evicts a lower-tier running step once, records why, retries it without using a retry, then places both', async () => {
    const h = harness(SETTINGS);
    addWorkflow(h, 'batch', 'nightly', { retry: { limit: 0 } });
    addWorkflow(h, 'prod', 'urgent', {});
    const victim = startRun(h, 'batch', 'nightly');
    await until('the batch step to run', () => step(h, 'batch', victim)?.phase === 'Running');

    const preemptor = startRun(h, 'prod', 'urgent');
    await until('the victim retried', () => step(h, 'batch', victim)?.attempts === 2);
    await h.controller.idle();
    expect(h.launcher.kills).toEqual([`${victim}/work#1`]);
    const why = step(h, 'batch', victim)!;
    expect(why).toMatchObject({ phase: 'Queued', attempts: 2, preemptions: 1 });
    expect(why.message).toBe(
      `attempt 1 preempted: SCHEDULER_PREEMPTED: evicted for prod/${preemptor}/work (tier 0) on node node-1; this step's tier is 5`,
    );
    // the preemptor took the room; the victim's new attempt waits for it
    await until('the preemptor placed', () => launchedAs(h).includes(`${preemptor}/work#1`));
    expect(h.launcher.launched.find((l) => l.run === preemptor)?.node).toBe('node-1');
    expect(launchedAs(h)).not.toContain(`${victim}/work#2`);
    expect(
      h.logs.some((l) => l.msg === 'preempting step attempt' && l.obj.preemptor === `prod/${preemptor}/work`),
    ).toBe(true);

    h.launcher.end(`${preemptor}/work#1`);
    await until('the victim placed again', () => h.launcher.isRunning(`${victim}/work#2`));
    h.launcher.end(`${victim}/work#2`);
    await until(
      'both runs done',
      () => phase(h, 'batch', victim) === 'Succeeded' && phase(h, 'prod', preemptor) === 'Succeeded',
    );
    // retry.limit 0 and still Succeeded: the preemption did not count as the step's failure
    expect(step(h, 'batch', victim)).toMatchObject({ phase: 'Succeeded', attempts: 2, preemptions: 1 });
    expect(h.launcher.kills).toHaveLength(1);
    // the metrics port hears of it once, with the victim's namespace
    expect(h.observed).toEqual([{ namespace: 'batch', victimTier: 5, preemptorTier: 0 }]);
    expect(h.preempted).toEqual([
      `${victim}/work#1: SCHEDULER_PREEMPTED: evicted for prod/${preemptor}/work (tier 0) on node node-1; this step's tier is 5`,
    ]);
  });

  it('never evicts for a namespace the admin did not let preempt (off by default), whatever tier it asks', async () => {
    const cases: [PreemptionSettings | undefined, string][] = [
      [undefined, 'prod'],
      [{ namespaces: { prod: { tier: 0 }, batch: { tier: 5 } } }, 'prod'],
      [{ namespaces: { prod: { preempt: true, tier: 0 }, batch: { tier: 5 }, team: { tier: 0 } } }, 'team'],
    ];
    for (const [settings, ns] of cases) {
      const h = harness(settings);
      addWorkflow(h, 'batch', 'nightly', {});
      addWorkflow(h, ns, 'pushy', { tier: 0 });
      const victim = startRun(h, 'batch', 'nightly');
      await until('the batch step to run', () => step(h, 'batch', victim)?.phase === 'Running');
      const other = startRun(h, ns, 'pushy');
      await until('the other step queued', () => step(h, ns, other)?.phase === 'Queued');
      h.controller.offersChanged();
      await h.controller.idle();
      expect(h.launcher.kills).toEqual([]);
      expect(launchedAs(h)).toEqual([`${victim}/work#1`]);
      h.launcher.end(`${victim}/work#1`);
      await until('the other step placed', () => h.launcher.isRunning(`${other}/work#1`));
      h.stop();
    }
  });

  it('clamps a tier a workflow asks for to its namespace bound, so it cannot shield itself from eviction', async () => {
    // batch may go no higher than tier 3; "team" is not listed: defaultTier 4 is its tier and bound
    const settings: PreemptionSettings = {
      defaultTier: 4,
      namespaces: { prod: { preempt: true, tier: 1 }, batch: { tier: 5, minTier: 3 } },
    };
    for (const ns of ['batch', 'team']) {
      const h = harness(settings);
      addWorkflow(h, ns, 'greedy', { tier: 0 }); // asks for the top tier, above prod's
      addWorkflow(h, 'prod', 'urgent', {});
      const victim = startRun(h, ns, 'greedy');
      await until('the greedy step to run', () => step(h, ns, victim)?.phase === 'Running');
      const preemptor = startRun(h, 'prod', 'urgent');
      await until('the greedy step preempted', () => step(h, ns, victim)?.preemptions === 1);
      expect(step(h, ns, victim)?.message).toContain(
        `(tier 1) on node node-1; this step's tier is ${ns === 'batch' ? 3 : 4}`,
      );
      await until('the preemptor placed', () => h.launcher.isRunning(`${preemptor}/work#1`));
      h.stop();
    }
  });

  it('kills a victim again when its kill throws or is lost, and never evicts it twice meanwhile', async () => {
    const h = harness({ ...SETTINGS, killRetrySeconds: 30 });
    addWorkflow(h, 'batch', 'nightly', {});
    addWorkflow(h, 'prod', 'urgent', {});
    const victim = startRun(h, 'batch', 'nightly');
    await until('the batch step to run', () => step(h, 'batch', victim)?.phase === 'Running');
    h.launcher.failKills = 1;
    h.launcher.loseKills = 1;
    startRun(h, 'prod', 'urgent');
    await until('the first kill', () => h.launcher.kills.length === 1);
    await h.controller.idle();
    expect(h.logs.some((l) => l.msg === 'cannot kill the preempted step attempt; trying again')).toBe(true);
    // passes before the retry delay: no second eviction, no second kill
    h.clock.now += 29_000;
    h.controller.offersChanged();
    await h.controller.idle();
    expect(h.launcher.kills).toHaveLength(1);
    h.clock.now += 1_000;
    h.controller.offersChanged();
    await h.controller.idle();
    expect(h.launcher.kills).toEqual([`${victim}/work#1`, `${victim}/work#1`]); // this one is lost
    h.clock.now += 30_000;
    h.controller.offersChanged();
    await until('the victim retried', () => step(h, 'batch', victim)?.preemptions === 1);
    expect(h.launcher.kills).toHaveLength(3);
    expect(h.preempted).toHaveLength(1); // one eviction, however many kills
    expect(h.observed).toHaveLength(1);
    expect(step(h, 'batch', victim)?.phase).toBe('Queued');
  });

  it('a restart during the kill keeps the victim a victim: its end is a preemption, not a failure', async () => {
    const first = harness(SETTINGS);
    addWorkflow(first, 'batch', 'nightly', {});
    addWorkflow(first, 'prod', 'urgent', {});
    const victim = startRun(first, 'batch', 'nightly');
    await until('the batch step to run', () => step(first, 'batch', victim)?.phase === 'Running');
    first.launcher.loseKills = 1;
    startRun(first, 'prod', 'urgent');
    await until('the kill', () => first.launcher.kills.length === 1);
    await first.controller.idle();
    first.stop();

    const second = harness(SETTINGS, { root: first.root, launcher: first.launcher });
    await until('the victim retried', () => step(second, 'batch', victim)?.preemptions === 1);
    expect(first.launcher.kills).toEqual([`${victim}/work#1`, `${victim}/work#1`]);
    // killed again from its task record, not chosen again by a new eviction
    expect(second.logs.filter((l) => l.msg === 'preempting step attempt')).toEqual([]);
    expect(second.preempted).toEqual([]); // reported by the first controller, not again
    expect(second.observed).toEqual([]);
    expect(first.observed).toHaveLength(1);
    expect(first.preempted).toHaveLength(1);
    expect(step(second, 'batch', victim)).toMatchObject({ attempts: 2 });
    expect(step(second, 'batch', victim)?.message).toContain('SCHEDULER_PREEMPTED');
  });

  it("in the standalone server, kills the victim's process group and retries the step there", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'meson-preempt-standalone-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const clock = { now: Date.now() };
    const s = createStandalone({
      dataDir,
      now: () => clock.now,
      capacity: { cpuMillis: 2000, memoryBytes: 4 * GiB },
      hostname: 'node-1',
      retention: false,
      triggers: false,
      preemption: SETTINGS,
    });
    cleanups.push(() => s.stop());
    s.start();
    const h: H = { store: s.store, clock };
    addWorkflow(h, 'batch', 'nightly', { shell: { script: 'exec sleep 60' } });
    addWorkflow(h, 'prod', 'urgent', { shell: { script: 'echo urgent' } });
    const victim = startRun(h, 'batch', 'nightly');
    await until('the batch step to run', () => step(h, 'batch', victim)?.phase === 'Running', 20_000);
    const preemptor = startRun(h, 'prod', 'urgent');
    await until('the urgent run done', () => phase(h, 'prod', preemptor) === 'Succeeded', 30_000);
    expect(step(h, 'batch', victim)).toMatchObject({ attempts: 2, preemptions: 1 });
    expect(step(h, 'batch', victim)?.message).toMatch(
      new RegExp(
        `^attempt 1 preempted: SCHEDULER_PREEMPTED: evicted for prod/${preemptor}/work \\(tier 0\\)`,
      ),
    );
    // the new attempt runs once the preemptor is done; stop it so that nothing outlives the test
    await until('the victim running again', () => step(h, 'batch', victim)?.phase === 'Running', 20_000);
    const cur = s.store.get<WorkflowRun>('WorkflowRun', 'batch', victim)!;
    s.store.update('WorkflowRun', { ...cur, spec: { ...cur.spec, stop: true } });
    await until('the victim run stopped', () => phase(h, 'batch', victim) === 'Stopped', 20_000);
  });
});
