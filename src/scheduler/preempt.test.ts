import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Offer } from '../offer-adapter/types.ts';
import { smallestSet, type Victim } from './preempt.ts';
import { Scheduler, schedulePass } from './scheduler.ts';
import { GiB, offer, task } from './test-helpers.ts';
import type { ClusterState, Eviction, PassResult, PreemptionConfig, RunningTask, Task } from './types.ts';

const now = 0;

/** A host whose running tasks leave it `freeCores` free (offers show free capacity only). */
function host(name: string, cores: number, memGi: number, running: RunningTask[]): Offer {
  let cpu = cores * 1000;
  let mem = memGi * GiB;
  for (const r of running) {
    cpu -= r.task.resources.cpuMillis;
    mem -= r.task.resources.memoryBytes;
  }
  return offer(name, 0, 0, {
    resources: { cpuMillis: cpu, memoryBytes: mem },
    capacity: { cpuMillis: cores * 1000, memoryBytes: memGi * GiB, diskBytes: 0, gpus: 0 },
  });
}

function run(
  id: string,
  hostname: string,
  cores: number,
  extra: Partial<Task> & { startedAt?: number } = {},
) {
  const { startedAt, ...rest } = extra;
  const r: RunningTask = { task: task(id, cores, 1, { tenant: 'batch', tier: 2, ...rest }), hostname };
  if (startedAt !== undefined) r.startedAt = startedAt;
  return r;
}

const enabled = (...ns: string[]): PreemptionConfig => ({
  namespaces: Object.fromEntries(ns.map((n) => [n, { enabled: true }])),
});

describe('preemption by tier', () => {
  it('evicts the fewest lower-tier tasks, youngest first, and keeps the preemptor queued', () => {
    const running = [
      run('old', 'h1', 2, { startedAt: 10 }),
      run('young', 'h1', 2, { startedAt: 20 }),
      run('small', 'h1', 1, { startedAt: 30 }),
    ];
    const res = schedulePass({
      tasks: [task('urgent', 2, 1, { tenant: 'prod', tier: 0 })],
      offers: [host('h1', 5, 16, running)],
      now,
      state: { running, preemption: enabled('prod') },
    });
    expect(res.placements).toEqual([]);
    // One 2-core victim suffices; of the two, the younger goes (the 1-core one alone is not enough).
    expect(res.evictions).toEqual([
      {
        code: 'SCHEDULER_PREEMPTED',
        victimTaskId: 'young',
        victimTenant: 'batch',
        victimTier: 2,
        hostname: 'h1',
        preemptorTaskId: 'urgent',
        preemptorTenant: 'prod',
        preemptorTier: 0,
        reason:
          'preempted on h1 by task urgent (namespace prod, tier 0; this task: namespace batch, tier 2) ' +
          'to make room for 2 cpus, 1Gi memory',
      },
    ]);
    expect(res.unplaced).toMatchObject([
      { taskId: 'urgent', outcome: 'preempting', preemption: { hostname: 'h1', victims: ['young'] } },
    ]);
    expect(res.unplaced[0]!.reasons[0]!.message).toMatch(/^cpus: 1 of 1 hosts lacked it/);
  });

  it('prefers fewer victims over lower tiers, then the lowest tier', () => {
    // h1: one tier-1 task frees enough; h2: two tier-3 tasks would be needed; h3: one tier-2 task.
    const running = [
      run('t1', 'h1', 4, { tier: 1 }),
      run('t3a', 'h2', 2, { tier: 3 }),
      run('t3b', 'h2', 2, { tier: 3 }),
      run('t2', 'h3', 4, { tier: 2 }),
    ];
    const offers = [
      host('h1', 4, 16, [running[0]!]),
      host('h2', 4, 16, running.slice(1, 3)),
      host('h3', 4, 16, [running[3]!]),
    ];
    const res = schedulePass({
      tasks: [task('p', 3, 1, { tenant: 'prod', tier: 0 })],
      offers,
      now,
      state: { running, preemption: enabled('prod') },
    });
    expect(res.evictions.map((e) => e.victimTaskId)).toEqual(['t2']);
    // Without h3, one tier-1 victim still beats two tier-3 ones.
    const res2 = schedulePass({
      tasks: [task('p', 3, 1, { tenant: 'prod', tier: 0 })],
      offers: offers.slice(0, 2),
      now,
      state: { running: running.slice(0, 3), preemption: enabled('prod') },
    });
    expect(res2.evictions.map((e) => e.victimTaskId)).toEqual(['t1']);
  });

  it('is off by default and per namespace; never evicts the same or a higher tier', () => {
    const running = [run('r', 'h1', 4, { tier: 1 })];
    const base = { offers: [host('h1', 4, 16, running)], now };
    const t = (tenant: string, tier: number) => [task('p', 2, 1, { tenant, tier })];
    const evict = (tasks: Task[], state: ClusterState) => schedulePass({ ...base, tasks, state }).evictions;
    expect(evict(t('prod', 0), { running })).toEqual([]);
    expect(evict(t('prod', 0), { running, preemption: {} })).toEqual([]);
    expect(
      evict(t('prod', 0), { running, preemption: { namespaces: { prod: { enabled: false } } } }),
    ).toEqual([]);
    expect(evict(t('dev', 0), { running, preemption: enabled('prod') })).toEqual([]);
    expect(evict(t('prod', 1), { running, preemption: enabled('prod') })).toEqual([]);
    expect(evict(t('prod', 2), { running, preemption: enabled('prod') })).toEqual([]);
    expect(evict(t('prod', 0), { running, preemption: enabled('prod') })).toHaveLength(1);
  });

  it("never takes another namespace below its guaranteed share; its own namespace's work is fair game", () => {
    const running = [run('b1', 'h1', 2, { tier: 1 }), run('b2', 'h1', 2, { tier: 1 })];
    const offers = [host('h1', 4, 16, running)];
    const pass = (guaranteed: number, tenant = 'prod') =>
      schedulePass({
        tasks: [task('p', 2, 1, { tenant, tier: 0 })],
        offers,
        now,
        state: {
          running,
          preemption: {
            namespaces: {
              prod: { enabled: true },
              batch: { enabled: true, guaranteed: { cpuMillis: guaranteed } },
            },
          },
        },
      });
    expect(pass(4000).evictions).toEqual([]);
    expect(pass(2001).evictions).toEqual([]);
    expect(pass(2000).evictions).toHaveLength(1);
    // The guarantee protects a namespace from others, not from its own higher tiers.
    expect(pass(4000, 'batch').evictions).toHaveLength(1);
  });

  it('does not preempt for a task over its quota', () => {
    const running = [run('r', 'h1', 4)];
    const res = schedulePass({
      tasks: [task('p', 2, 1, { tenant: 'prod', tier: 0 })],
      offers: [host('h1', 4, 16, running)],
      now,
      state: { running, preemption: enabled('prod'), quotas: { prod: { cpuMillis: 1000 } } },
    });
    expect(res.evictions).toEqual([]);
    expect(res.unplaced[0]!.outcome).toBe('over-quota');
  });

  it('does not evict where the preemptor cannot run (constraints), nor with no victim set large enough', () => {
    const running = [run('r1', 'h1', 4), run('r2', 'h2', 1)];
    const offers = [
      { ...host('h1', 4, 16, [running[0]!]), attributes: { zone: 'a' } },
      { ...host('h2', 2, 16, [running[1]!]), attributes: { zone: 'b' } },
    ];
    const p = (cores: number) =>
      schedulePass({
        tasks: [
          task('p', cores, 1, { tenant: 'prod', tier: 0, constraints: { nodeSelector: { zone: 'b' } } }),
        ],
        offers,
        now,
        state: { running, preemption: enabled('prod') },
      }).evictions;
    expect(p(3)).toEqual([]); // h2 holds 2 cores at most; h1 is in the wrong zone
    expect(p(2).map((e) => e.victimTaskId)).toEqual(['r2']);
  });

  it('reserves the room within a pass: a second preemptor does not count it', () => {
    const running = [run('r1', 'h1', 2, { startedAt: 1 }), run('r2', 'h1', 2, { startedAt: 2 })];
    const res = schedulePass({
      tasks: [
        task('p1', 2, 1, { tenant: 'prod', tier: 0, submittedAt: 1 }),
        task('p2', 2, 1, { tenant: 'prod', tier: 0, submittedAt: 2 }),
      ],
      offers: [host('h1', 4, 16, running)],
      now,
      state: { running, preemption: enabled('prod') },
    });
    expect(res.evictions.map((e) => `${e.preemptorTaskId}>${e.victimTaskId}`)).toEqual(['p1>r2', 'p2>r1']);
  });

  it('stops looking for victims when the pass runs out of search steps', () => {
    const running = [run('r1', 'h1', 2), run('r2', 'h2', 2)];
    const offers = [host('h1', 2, 16, [running[0]!]), host('h2', 2, 16, [running[1]!])];
    const tasks = [
      task('p1', 2, 1, { tenant: 'prod', tier: 0, submittedAt: 1 }),
      task('p2', 2, 1, { tenant: 'prod', tier: 0, submittedAt: 2 }),
    ];
    const pass = (maxSearchSteps?: number) =>
      schedulePass({
        tasks,
        offers,
        now,
        state: {
          running,
          preemption: { ...enabled('prod'), ...(maxSearchSteps === undefined ? {} : { maxSearchSteps }) },
        },
      }).evictions.map((e) => e.preemptorTaskId);
    expect(pass()).toEqual(['p1', 'p2']);
    expect(pass(0)).toEqual([]);
    // Each host looked at costs 1 + its running tasks, the search of a set of one 2 steps: p1
    // takes 8. With 7, p1 could not look at every host, so it evicts no one.
    expect(pass(8)).toEqual(['p1']);
    expect(pass(7)).toEqual([]);
  });

  it('the incremental Scheduler evicts once, waits for the victim, then places the preemptor', () => {
    const s = new Scheduler({ preemption: enabled('prod') });
    s.addOffer(offer('h1', 4, 16));
    s.enqueue(task('batch-job', 4, 1, { tenant: 'batch', tier: 2 }));
    expect(s.schedule(100).placements.map((p) => p.taskId)).toEqual(['batch-job']);
    s.rescindOffer('h1-offer');
    s.addOffer(offer('h1', 0, 15)); // the source keeps offering the full node
    s.enqueue(task('urgent', 2, 1, { tenant: 'prod', tier: 0 }));
    const first = s.schedule(200);
    expect(first.evictions.map((e) => e.victimTaskId)).toEqual(['batch-job']);
    // The kill is under way: the next pass evicts nothing more, and says what it waits for.
    const second = s.schedule(300);
    expect(second.evictions).toEqual([]);
    expect(s.whyQueued('urgent')).toMatchObject({
      outcome: 'preempting',
      preemption: { hostname: 'h1', victims: ['batch-job'] },
    });
    // The victim ends; its resources come back as an offer; the preemptor runs.
    expect(s.taskFinished('batch-job')).toBe(true);
    s.rescindOffer('h1-offer');
    s.addOffer(offer('h1', 4, 16));
    expect(s.schedule(400).placements.map((p) => `${p.taskId}@${p.hostname}`)).toEqual(['urgent@h1']);
  });

  it('markEvicting (a restart mid-kill): the victim is not chosen again and its preemptor waits', () => {
    const s = new Scheduler({ preemption: enabled('prod') });
    s.addOffer(offer('h1', 0, 14));
    s.markRunning(task('a', 2, 1, { tenant: 'batch', tier: 1 }), 'h1', 50);
    s.markRunning(task('b', 2, 1, { tenant: 'batch', tier: 1 }), 'h1', 40);
    expect(s.markEvicting('a', 'p')).toBe(true);
    expect(s.markEvicting('unknown', 'p')).toBe(false);
    s.enqueue(task('p', 2, 1, { tenant: 'prod', tier: 0 }));
    expect(s.schedule(100).evictions).toEqual([]);
    expect(s.whyQueued('p')).toMatchObject({ outcome: 'preempting', preemption: { victims: ['a'] } });
  });

  it('restarts keep start times: markRunning ranks the younger victim first', () => {
    const s = new Scheduler({ preemption: enabled('prod') });
    s.addOffer(offer('h1', 0, 14));
    s.markRunning(task('a', 2, 1, { tenant: 'batch', tier: 1 }), 'h1', 50);
    s.markRunning(task('b', 2, 1, { tenant: 'batch', tier: 1 }), 'h1', 40);
    s.enqueue(task('p', 2, 1, { tenant: 'prod', tier: 0 }));
    expect(s.schedule(100).evictions.map((e) => e.victimTaskId)).toEqual(['a']);
  });
});

// ---------------------------------------------------------------- properties

interface Gen {
  hosts: {
    cores: number;
    running: { tenant: number; tier: number; cores: number; memGi: number; startedAt: number }[];
  }[];
  queued: { tenant: number; tier: number; cores: number; memGi: number }[];
  enabled: boolean[];
  guaranteed: (number | undefined)[];
}

const TENANTS = ['a', 'b', 'c'];

const genArb = (maxQueued: number): fc.Arbitrary<Gen> =>
  fc.record({
    hosts: fc.array(
      fc.record({
        cores: fc.integer({ min: 2, max: 8 }),
        running: fc.array(
          fc.record({
            tenant: fc.integer({ min: 0, max: 2 }),
            tier: fc.integer({ min: 0, max: 3 }),
            cores: fc.integer({ min: 1, max: 3 }),
            memGi: fc.integer({ min: 0, max: 4 }),
            startedAt: fc.integer({ min: 0, max: 5 }),
          }),
          { maxLength: 5 },
        ),
      }),
      { minLength: 1, maxLength: 4 },
    ),
    queued: fc.array(
      fc.record({
        tenant: fc.integer({ min: 0, max: 2 }),
        tier: fc.integer({ min: 0, max: 2 }),
        cores: fc.integer({ min: 1, max: 6 }),
        memGi: fc.integer({ min: 0, max: 8 }),
      }),
      { minLength: 1, maxLength: maxQueued },
    ),
    enabled: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    guaranteed: fc.array(fc.option(fc.integer({ min: 0, max: 12_000 }), { nil: undefined }), {
      minLength: 3,
      maxLength: 3,
    }),
  });

function build(g: Gen) {
  const running: RunningTask[] = [];
  const offers: Offer[] = [];
  g.hosts.forEach((h, i) => {
    // Running tasks beyond the host's capacity are dropped (a host never runs more than it has).
    let cpu = h.cores * 1000;
    let mem = 16 * GiB;
    const mine: RunningTask[] = [];
    h.running.forEach((r, j) => {
      if (r.cores * 1000 > cpu || r.memGi * GiB > mem) return;
      cpu -= r.cores * 1000;
      mem -= r.memGi * GiB;
      mine.push({
        task: task(`r${i}-${j}`, r.cores, r.memGi, { tenant: TENANTS[r.tenant]!, tier: r.tier }),
        hostname: `h${i}`,
        startedAt: r.startedAt,
      });
    });
    running.push(...mine);
    offers.push(host(`h${i}`, h.cores, 16, mine));
  });
  const tasks = g.queued.map((q, i) =>
    task(`q${i}`, q.cores, q.memGi, { tenant: TENANTS[q.tenant]!, tier: q.tier, submittedAt: i }),
  );
  const preemption: PreemptionConfig = { namespaces: {} };
  TENANTS.forEach((t, i) => {
    const ns: { enabled: boolean; guaranteed?: { cpuMillis: number } } = { enabled: g.enabled[i]! };
    if (g.guaranteed[i] !== undefined) ns.guaranteed = { cpuMillis: g.guaranteed[i]! };
    preemption.namespaces![t] = ns;
  });
  return { running, offers, tasks, preemption };
}

/** Running CPU per namespace. */
function cpuByTenant(running: RunningTask[]): Map<string, number> {
  const usage = new Map<string, number>();
  for (const r of running)
    usage.set(r.task.tenant, (usage.get(r.task.tenant) ?? 0) + r.task.resources.cpuMillis);
  return usage;
}

/** Evictions grouped by preemptor, in the order the pass made them. */
function byPreemptor(evictions: Eviction[]): Map<string, Eviction[]> {
  const out = new Map<string, Eviction[]>();
  for (const e of evictions) {
    const list = out.get(e.preemptorTaskId) ?? [];
    list.push(e);
    out.set(e.preemptorTaskId, list);
  }
  return out;
}

function passOf(g: Gen): { res: PassResult; built: ReturnType<typeof build> } {
  const built = build(g);
  const res = schedulePass({
    tasks: built.tasks,
    offers: built.offers,
    now,
    state: { running: built.running, preemption: built.preemption },
  });
  return { res, built };
}

describe('preemption properties', () => {
  it('(a) every eviction lets its preemptor fit, and only lower tiers are evicted', () => {
    fc.assert(
      fc.property(genArb(4), (g) => {
        const { res, built } = passOf(g);
        const runningById = new Map(built.running.map((r) => [r.task.id, r]));
        const taskById = new Map(built.tasks.map((t) => [t.id, t]));
        // Free on each host as the pass left it, then each preemptor's room in turn.
        const free = new Map(
          built.offers.map((o) => [o.hostname, { cpu: o.resources.cpuMillis, mem: o.resources.memoryBytes }]),
        );
        for (const p of res.placements) {
          const f = free.get(p.hostname)!;
          f.cpu -= p.resources.cpuMillis;
          f.mem -= p.resources.memoryBytes;
        }
        for (const [preemptor, evs] of byPreemptor(res.evictions)) {
          const t = taskById.get(preemptor)!;
          const f = free.get(evs[0]!.hostname)!;
          for (const e of evs) {
            expect(e.hostname).toBe(evs[0]!.hostname);
            const v = runningById.get(e.victimTaskId)!;
            expect(v.hostname).toBe(e.hostname);
            expect(v.task.tier ?? 0).toBeGreaterThan(t.tier ?? 0);
            f.cpu += v.task.resources.cpuMillis;
            f.mem += v.task.resources.memoryBytes;
          }
          expect(f.cpu).toBeGreaterThanOrEqual(t.resources.cpuMillis);
          expect(f.mem).toBeGreaterThanOrEqual(t.resources.memoryBytes);
          // Not pointless: without any one of its victims it would not fit.
          for (const e of evs) {
            const v = runningById.get(e.victimTaskId)!.task.resources;
            expect(
              f.cpu - v.cpuMillis < t.resources.cpuMillis || f.mem - v.memoryBytes < t.resources.memoryBytes,
            ).toBe(true);
          }
          f.cpu -= t.resources.cpuMillis;
          f.mem -= t.resources.memoryBytes;
          expect(res.unplaced.find((u) => u.taskId === preemptor)?.outcome).toBe('preempting');
        }
        expect(new Set(res.evictions.map((e) => e.victimTaskId)).size).toBe(res.evictions.length);
      }),
      { numRuns: 400 },
    );
  });

  it('(b) no eviction takes another namespace below its guaranteed share', () => {
    fc.assert(
      fc.property(genArb(4), (g) => {
        const { res, built } = passOf(g);
        const usage = cpuByTenant(built.running);
        const runningById = new Map(built.running.map((r) => [r.task.id, r.task]));
        for (const evs of byPreemptor(res.evictions).values()) {
          const freedByOthers = new Map<string, number>();
          for (const e of evs) {
            if (e.victimTenant === e.preemptorTenant) continue;
            const cpu = runningById.get(e.victimTaskId)!.resources.cpuMillis;
            freedByOthers.set(e.victimTenant, (freedByOthers.get(e.victimTenant) ?? 0) + cpu);
          }
          for (const [tenant, freed] of freedByOthers) {
            const min = built.preemption.namespaces![tenant]?.guaranteed?.cpuMillis;
            if (min !== undefined && freed > 0)
              expect(usage.get(tenant)! - freed).toBeGreaterThanOrEqual(min);
          }
          for (const e of evs) {
            const cpu = runningById.get(e.victimTaskId)!.resources.cpuMillis;
            usage.set(e.victimTenant, usage.get(e.victimTenant)! - cpu);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('(c) no eviction for a namespace with preemption off, nor with no preemption config', () => {
    fc.assert(
      fc.property(genArb(4), (g) => {
        const { res, built } = passOf(g);
        for (const e of res.evictions)
          expect(built.preemption.namespaces![e.preemptorTenant]!.enabled).toBe(true);
        const off = schedulePass({
          tasks: built.tasks,
          offers: built.offers,
          now,
          state: { running: built.running },
        });
        expect(off.evictions).toEqual([]);
        expect(off.unplaced.every((u) => u.outcome !== 'preempting')).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('(d) victims are the fewest, then the lowest tier, then the youngest (against a brute force)', () => {
    // One queued task: every host, every subset of its lower-tier tasks, the best by the rule.
    type Key = { tier: number; startedAt: number; id: string };
    // Is a less important than b (evicted first)? Larger tier, then later start, then id.
    const lessImportant = (a: Key, b: Key) =>
      a.tier !== b.tier
        ? a.tier > b.tier
        : a.startedAt !== b.startedAt
          ? a.startedAt > b.startedAt
          : a.id < b.id;
    const better = (a: Key[], b: Key[]): boolean => {
      if (a.length !== b.length) return a.length < b.length;
      // Most important first; the set whose most important differing member is less important wins.
      const sa = [...a].sort((x, y) => (lessImportant(x, y) ? 1 : -1));
      const sb = [...b].sort((x, y) => (lessImportant(x, y) ? 1 : -1));
      for (let i = 0; i < sa.length; i++) {
        if (sa[i]!.id !== sb[i]!.id) return lessImportant(sa[i]!, sb[i]!);
      }
      return false;
    };
    fc.assert(
      fc.property(genArb(1), (g) => {
        const { res, built } = passOf(g);
        const t = built.tasks[0]!;
        const ns = built.preemption.namespaces!;
        const usage = cpuByTenant(built.running);
        let best: Key[] | undefined;
        if (res.placements.length === 0 && ns[t.tenant]!.enabled) {
          for (const o of built.offers) {
            const vs = built.running.filter(
              (r) => r.hostname === o.hostname && (r.task.tier ?? 0) > (t.tier ?? 0),
            );
            for (let mask = 1; mask < 1 << vs.length; mask++) {
              const set = vs.filter((_, i) => mask & (1 << i));
              const cpu = set.reduce((s, r) => s + r.task.resources.cpuMillis, o.resources.cpuMillis);
              const mem = set.reduce((s, r) => s + r.task.resources.memoryBytes, o.resources.memoryBytes);
              if (cpu < t.resources.cpuMillis || mem < t.resources.memoryBytes) continue;
              const guaranteeOk = TENANTS.every((tenant) => {
                if (tenant === t.tenant) return true;
                const freed = set
                  .filter((r) => r.task.tenant === tenant)
                  .reduce((s, r) => s + r.task.resources.cpuMillis, 0);
                const min = ns[tenant]?.guaranteed?.cpuMillis;
                return freed === 0 || min === undefined || (usage.get(tenant) ?? 0) - freed >= min;
              });
              if (!guaranteeOk) continue;
              const keys = set.map((r) => ({
                tier: r.task.tier ?? 0,
                startedAt: r.startedAt!,
                id: r.task.id,
              }));
              if (!best || better(keys, best)) best = keys;
            }
          }
        }
        expect(res.evictions.map((e) => e.victimTaskId).sort()).toEqual((best ?? []).map((k) => k.id).sort());
      }),
      { numRuns: 600 },
    );
  });
});

describe('victim search', () => {
  const v = (id: string, tier: number, cpu: number, mem: number): Victim => ({
    id,
    tier,
    startedAt: 0,
    run: { task: task(id, cpu, mem), hostname: 'h' },
    frees: [cpu, mem],
  });
  // Sorted evict-first: tier 3 before tier 2 before tier 1.
  const vs = [v('a', 3, 1, 0), v('b', 3, 1, 0), v('c', 2, 2, 0), v('d', 1, 1, 1)];
  const ids = (set: Victim[] | undefined) => set?.map((x) => x.id);

  it('finds the smallest set, least important first, vetted by ok', () => {
    expect(ids(smallestSet(vs, [2, 0], () => true))).toEqual(['c']);
    expect(ids(smallestSet(vs, [2, 1], () => true))).toEqual(['a', 'd']);
    expect(ids(smallestSet(vs, [2, 0], (set) => !set.some((x) => x.id === 'c')))).toEqual(['a', 'b']);
    expect(smallestSet(vs, [6, 0], () => true)).toBeUndefined();
  });

  it('past its step budget, takes victims greedily and gives back those not needed', () => {
    // Greedy: a, b (2 cpus) then c is not needed; with memory needed, d joins and a, b stay.
    expect(ids(smallestSet(vs, [2, 0], () => true, 1))).toEqual(['a', 'b']);
    expect(ids(smallestSet(vs, [3, 1], () => true, 1))).toEqual(['a', 'b', 'd']);
    expect(smallestSet(vs, [2, 0], () => false, 1)).toBeUndefined();
  });
});
