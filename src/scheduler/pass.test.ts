import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Offer } from '../offer-adapter/types.ts';
import { affinityHolds, requirementHolds, untoleratedTaint } from './constraints.ts';
import { packedShare } from './fitness.ts';
import { HostIndex, hostRank, MAX_HOST_CLASSES } from './host-index.ts';
import {
  constraintKey,
  constraintSetCount,
  constraintSetsHoldingPassData,
  internedKeyChars,
  MAX_CANDIDATE_LISTS,
  MAX_INTERNED_CHARS,
  MAX_LABEL_MEMOS,
  resolveOptions,
  runPass,
} from './pass.ts';
import { schedulePass } from './scheduler.ts';
import { GiB, offer, task } from './test-helpers.ts';
import type { AttributeRequirement, HostView, Taint, Task } from './types.ts';

const now = 0;

describe('fitness', () => {
  const offers = () => [
    offer('empty', 8, 32),
    offer('half', 4, 16, { capacity: { cpuMillis: 8000, memoryBytes: 32 * GiB, diskBytes: 0, gpus: 0 } }),
  ];

  it('bin packing (default) prefers the fuller host', () => {
    const res = schedulePass({ tasks: [task('t', 1, 1)], offers: offers(), now });
    expect(res.placements[0]!.hostname).toBe('half');
    expect(res.placements[0]!.score).toBeCloseTo(((4 + 1) / 8 + (16 + 1) / 32) / 2);
  });

  it('spread prefers the emptier host', () => {
    const res = schedulePass({
      tasks: [task('t', 1, 1)],
      offers: offers(),
      now,
      options: { fitness: 'spread' },
    });
    expect(res.placements[0]!.hostname).toBe('empty');
  });

  it('soft constraints are blended in: a preferred host can beat a better packed one', () => {
    const withZone = [offer('empty', 8, 32, { attributes: { zone: 'a' } }), offers()[1]!];
    const soft = [{ weight: 50, requirement: { key: 'zone', operator: 'In' as const, values: ['a'] } }];
    const res = schedulePass({ tasks: [task('t', 1, 1, { constraints: { soft } })], offers: withZone, now });
    expect(res.placements[0]!.hostname).toBe('empty');
    // With little weight on preferences, packing wins again.
    const packed = schedulePass({
      tasks: [task('t', 1, 1, { constraints: { soft } })],
      offers: withZone,
      now,
      options: { softWeight: 0.1 },
    });
    expect(packed.placements[0]!.hostname).toBe('half');
  });

  it('a fitness plugin replaces the built-in one', () => {
    const byName = {
      name: 'prefer-empty-name',
      fitness: (_t: Task, h: HostView) => (h.hostname === 'empty' ? 1 : 0),
    };
    const res = schedulePass({
      tasks: [task('t', 1, 1)],
      offers: offers(),
      now,
      options: { fitness: byName },
    });
    expect(res.placements[0]!.hostname).toBe('empty');
  });
});

describe('good enough', () => {
  // Tightest-first visits the host with the least free CPU first: "cpu-tight" (1 core free of 8,
  // memory empty) scores (8/8 + 1/64)/2 ~ 0.51; "both-tight" has more CPU free but is nearly full
  // of memory and scores (5/8 + 63/64)/2 ~ 0.80.
  const offers = () => [
    offer('cpu-tight', 1, 64, {
      capacity: { cpuMillis: 8000, memoryBytes: 64 * GiB, diskBytes: 0, gpus: 0 },
    }),
    offer('both-tight', 4, 2, {
      capacity: { cpuMillis: 8000, memoryBytes: 64 * GiB, diskBytes: 0, gpus: 0 },
    }),
  ];

  it('takes the first host that scores at least goodEnough', () => {
    const res = schedulePass({
      tasks: [task('t', 1, 1)],
      offers: offers(),
      now,
      options: { goodEnough: 0.5 },
    });
    expect(res.placements[0]!.hostname).toBe('cpu-tight');
  });

  it('off (null) finds the best host', () => {
    const res = schedulePass({
      tasks: [task('t', 1, 1)],
      offers: offers(),
      now,
      options: { goodEnough: null },
    });
    expect(res.placements[0]!.hostname).toBe('both-tight');
  });
});

/** What a full scan would choose: best packing score, ties to the lower seeded rank. */
function bruteForce(tasks: Task[], offers: Offer[], seed: number, spread = false): string[] {
  const hosts = offers.map((o) => ({
    hostname: o.hostname,
    attributes: o.attributes,
    free: { ...o.resources },
    capacity: { ...(o.capacity ?? o.resources) },
    rank: hostRank(o.hostname, seed),
    blocking: o.taints?.filter((x) => x.effect !== 'PreferNoSchedule'),
  }));
  const out: string[] = [];
  for (const t of tasks) {
    let best: (typeof hosts)[number] | undefined;
    let bestScore = -1;
    for (const h of hosts) {
      const r = t.resources;
      if (h.free.cpuMillis < r.cpuMillis || h.free.memoryBytes < r.memoryBytes) continue;
      if (h.free.gpus < r.gpus || (r.gpus > 0 && h.capacity.gpus === 0)) continue;
      const selector = t.constraints?.nodeSelector ?? {};
      if (Object.entries(selector).some(([k, v]) => h.attributes[k] !== v)) continue;
      if (t.constraints?.attributes?.some((a) => !requirementHolds(a, h.attributes))) continue;
      const affinity = t.constraints?.nodeAffinity;
      if (affinity && !affinityHolds(affinity, h.attributes)) continue;
      if (h.blocking?.length && untoleratedTaint(t.constraints?.tolerations ?? [], h.blocking)) continue;
      const score = spread ? 1 - packedShare(r, h) : packedShare(r, h);
      if (score > bestScore || (score === bestScore && h.rank < best!.rank)) {
        best = h;
        bestScore = score;
      }
    }
    if (!best) continue;
    best.free.cpuMillis -= t.resources.cpuMillis;
    best.free.memoryBytes -= t.resources.memoryBytes;
    best.free.gpus -= t.resources.gpus;
    out.push(`${t.id}@${best.hostname}`);
  }
  return out;
}

/** An indexed pass with goodEnough off places as bruteForce does. */
function expectFullScanPlacements(
  tasks: Task[],
  offers: Offer[],
  seed: number,
  spread: boolean,
  maxClasses: number,
): void {
  const fitness = spread ? 'spread' : 'binpack';
  const index = new HostIndex(seed, { maxClasses });
  for (const o of offers) index.addOffer(o);
  const res = runPass(index, tasks, {}, resolveOptions({ goodEnough: null, seed, fitness }));
  expect(res.placements.map((p) => `${p.taskId}@${p.hostname}`)).toEqual(
    bruteForce(tasks, offers, seed, spread),
  );
}

describe('the indexed search', () => {
  it('with goodEnough off places exactly as a full scan of every host would (packing and spread)', () => {
    const hostArb = fc.record({
      capCores: fc.integer({ min: 1, max: 64 }),
      capMemGi: fc.integer({ min: 1, max: 256 }),
      usedPct: fc.integer({ min: 0, max: 100 }),
      memUsedPct: fc.integer({ min: 0, max: 100 }),
    });
    const taskArb = fc.record({
      millis: fc.integer({ min: 0, max: 16_000 }),
      memMi: fc.integer({ min: 0, max: 65_536 }),
    });
    fc.assert(
      fc.property(
        fc.array(hostArb, { minLength: 1, maxLength: 40 }),
        fc.array(taskArb, { minLength: 1, maxLength: 60 }),
        fc.integer(),
        fc.boolean(),
        (hs, ts, seed, spread) => {
          const offers = hs.map((h, i) => {
            const capCpu = h.capCores * 1000;
            const capMem = h.capMemGi * GiB;
            return offer(`h${i}`, 0, 0, {
              attributes: { pool: i % 10 === 0 ? 'rare' : 'common' },
              resources: {
                cpuMillis: Math.floor((capCpu * (100 - h.usedPct)) / 100),
                memoryBytes: Math.floor((capMem * (100 - h.memUsedPct)) / 100),
              },
              capacity: { cpuMillis: capCpu, memoryBytes: capMem, diskBytes: 0, gpus: 0 },
            });
          });
          const tasks = ts.map((t, i) =>
            task(`t${i}`, 0, 0, {
              submittedAt: i,
              resources: { cpuMillis: t.millis, memoryBytes: t.memMi * 1024 * 1024 },
            }),
          );
          const fitness = spread ? 'spread' : 'binpack';
          const res = schedulePass({ tasks, offers, now, options: { goodEnough: null, seed, fitness } });
          expect(res.placements.map((p) => `${p.taskId}@${p.hostname}`)).toEqual(
            bruteForce(tasks, offers, seed, spread),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('places heterogeneous, constrained and tainted work exactly as a full scan would (goodEnough off)', () => {
    // CPU-heavy, memory-heavy and GPU hosts (GPU hosts tainted), a tainted batch pool, zone
    // labels; tasks CPU-shaped, memory-shaped, GPU, with a selector, required affinity or a
    // toleration. The free-memory/GPU bucket bounds and the untainted bounds must never skip a
    // host a full scan would take, also after placements made them stale.
    const GPU_TAINT: Taint = { key: 'nvidia.com/gpu', effect: 'NoSchedule' };
    const BATCH_TAINT: Taint = { key: 'dedicated', value: 'batch', effect: 'NoExecute' };
    const hostArb = fc.record({
      kind: fc.constantFrom('cpu', 'memory', 'gpu', 'batch'),
      cores: fc.integer({ min: 1, max: 64 }),
      memGi: fc.integer({ min: 1, max: 512 }),
      gpus: fc.constantFrom(4, 8),
      usedPct: fc.integer({ min: 0, max: 100 }),
      memUsedPct: fc.integer({ min: 0, max: 100 }),
      zone: fc.constantFrom('a', 'b', 'c'),
    });
    const taskArb = fc.record({
      shape: fc.constantFrom('cpu', 'memory', 'gpu', 'selector', 'affinity', 'toleration'),
      millis: fc.integer({ min: 0, max: 16_000 }),
      memGi: fc.integer({ min: 0, max: 64 }),
      gpus: fc.integer({ min: 1, max: 8 }),
      zone: fc.constantFrom('a', 'b', 'c'),
    });
    fc.assert(
      fc.property(
        fc.array(hostArb, { minLength: 1, maxLength: 60 }),
        fc.array(taskArb, { minLength: 1, maxLength: 80 }),
        fc.integer(),
        fc.boolean(),
        // Host classes: none (all mixed), a few (the rest mixed), or the default.
        fc.constantFrom(0, 1, 3, MAX_HOST_CLASSES),
        (hs, ts, seed, spread, maxClasses) => {
          const offers = hs.map((h, i) => {
            const capCpu = h.cores * 1000;
            const capMem = h.memGi * GiB;
            const gpus = h.kind === 'gpu' ? h.gpus : 0;
            const o = offer(`h${i}`, 0, 0, {
              attributes: { zone: h.zone, pool: h.kind },
              resources: {
                cpuMillis: Math.floor((capCpu * (100 - h.usedPct)) / 100),
                memoryBytes: Math.floor((capMem * (100 - h.memUsedPct)) / 100),
                gpus,
              },
              capacity: { cpuMillis: capCpu, memoryBytes: capMem, diskBytes: 0, gpus },
            });
            if (h.kind === 'gpu') o.taints = [GPU_TAINT];
            if (h.kind === 'batch') o.taints = [BATCH_TAINT];
            return o;
          });
          const tasks = ts.map((t, i) => {
            const mem = t.shape === 'memory' ? Math.ceil(t.millis / 1000) * 16 : t.memGi;
            const x = task(`t${i}`, 0, 0, {
              submittedAt: i,
              resources: {
                cpuMillis: t.millis,
                memoryBytes: mem * GiB,
                gpus: t.shape === 'gpu' ? t.gpus : 0,
              },
            });
            if (t.shape === 'gpu')
              x.constraints = { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists' }] };
            if (t.shape === 'selector') x.constraints = { nodeSelector: { zone: t.zone } };
            if (t.shape === 'affinity') {
              x.constraints = {
                nodeAffinity: [
                  [{ key: 'zone', operator: 'In', values: [t.zone] }],
                  [{ key: 'pool', operator: 'In', values: ['memory'] }],
                ],
              };
            }
            if (t.shape === 'toleration')
              x.constraints = { tolerations: [{ key: 'dedicated', value: 'batch' }] };
            return x;
          });
          expectFullScanPlacements(tasks, offers, seed, spread, maxClasses);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('places label-constrained work on pools of identical hosts exactly as a full scan would', () => {
    // Few kinds of host, so each class holds many hosts and its label counts decide whether a
    // task's labels hold on all, none or some of them (then host by host), or whether the hosts
    // passing them are rare enough for a candidate list. Every operator, selectors, affinity
    // terms, tolerations and GPUs; hosts keep being charged, so counts and scans go stale.
    const GPU_TAINT: Taint = { key: 'nvidia.com/gpu', effect: 'NoSchedule' };
    const kinds = [
      { cores: 32, memGi: 64, gpus: 0, pool: 'cpu' },
      { cores: 16, memGi: 128, gpus: 0, pool: 'memory' },
      { cores: 32, memGi: 244, gpus: 4, pool: 'gpu' },
    ];
    const valueArb = fc.constantFrom('a', 'b', 'c', '1', '5', '10');
    const keyArb = fc.constantFrom('zone', 'rack', 'ssd', 'pool');
    const reqArb = fc.oneof(
      fc.record({
        key: keyArb,
        operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist'),
        values: fc.array(fc.constantFrom('a', 'b', 'c', '1', '5', '10', 'cpu', 'memory', 'gpu'), {
          minLength: 1,
          maxLength: 3,
        }),
      }),
      // Gt and Lt take one integer (a label that is no number fails them).
      fc.record({
        key: keyArb,
        operator: fc.constantFrom('Gt', 'Lt'),
        values: fc.constantFrom(['0'], ['1'], ['4'], ['5'], ['9']),
      }),
    ) as fc.Arbitrary<AttributeRequirement>;
    const hostArb = fc.record({
      kind: fc.integer({ min: 0, max: kinds.length - 1 }),
      usedPct: fc.constantFrom(0, 0, 25, 50, 90),
      zone: fc.constantFrom('a', 'b', 'c'),
      rack: fc.constantFrom('1', '5', '10'),
      ssd: fc.constantFrom(undefined, undefined, undefined, 'yes'),
    });
    const taskArb = fc.record({
      cores: fc.integer({ min: 0, max: 16 }),
      memGi: fc.integer({ min: 0, max: 64 }),
      gpus: fc.constantFrom(0, 0, 0, 1, 4),
      selector: fc.option(fc.dictionary(fc.constantFrom('zone', 'rack', 'pool'), valueArb, { maxKeys: 2 }), {
        nil: undefined,
      }),
      attributes: fc.option(fc.array(reqArb, { maxLength: 2 }), { nil: undefined }),
      affinity: fc.option(fc.array(fc.array(reqArb, { minLength: 1, maxLength: 2 }), { maxLength: 2 }), {
        nil: undefined,
      }),
      tolerates: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(hostArb, { minLength: 1, maxLength: 80 }),
        fc.array(taskArb, { minLength: 1, maxLength: 80 }),
        fc.integer(),
        fc.boolean(),
        fc.constantFrom(1, MAX_HOST_CLASSES),
        (hs, ts, seed, spread, maxClasses) => {
          const offers = hs.map((h, i) => {
            const k = kinds[h.kind]!;
            const capacity = {
              cpuMillis: k.cores * 1000,
              memoryBytes: k.memGi * GiB,
              diskBytes: 0,
              gpus: k.gpus,
            };
            const attributes: Record<string, string> = { zone: h.zone, rack: h.rack, pool: k.pool };
            if (h.ssd) attributes.ssd = h.ssd;
            const o = offer(`h${i}`, 0, 0, {
              attributes,
              capacity,
              resources: {
                cpuMillis: Math.floor((capacity.cpuMillis * (100 - h.usedPct)) / 100),
                memoryBytes: Math.floor((capacity.memoryBytes * (100 - h.usedPct)) / 100),
                gpus: k.gpus,
              },
            });
            if (k.gpus > 0) o.taints = [GPU_TAINT];
            return o;
          });
          const tasks = ts.map((t, i) => {
            const x = task(`t${i}`, t.cores, t.memGi, { submittedAt: i, resources: { gpus: t.gpus } });
            const c: NonNullable<Task['constraints']> = {};
            if (t.selector) c.nodeSelector = t.selector;
            if (t.attributes) c.attributes = t.attributes;
            if (t.affinity) c.nodeAffinity = t.affinity;
            if (t.tolerates) c.tolerations = [{ key: 'nvidia.com/gpu', operator: 'Exists' }];
            x.constraints = c;
            return x;
          });
          expectFullScanPlacements(tasks, offers, seed, spread, maxClasses);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('places label-constrained work on big pools exactly as a full scan would, pass after pass, as hosts come, go and change labels', () => {
    // One kind of host, few fill levels: buckets of 16 or more hosts, whose scans are remembered
    // (complete ones then skip the bucket once used up) and whose label sets are bits (past 31
    // label sets in a class they share one bit). Between passes hosts are added, relabelled (a
    // second offer with more labels: a new label set, the old one freed and its id reused) and
    // removed, and each pass must place as a full scan of the hosts as they are then.
    const cap = { cpuMillis: 32_000, memoryBytes: 64 * GiB, diskBytes: 0, gpus: 0 };
    const hostArb = fc.record({
      usedPct: fc.constantFrom(0, 0, 0, 50, 75),
      zone: fc.integer({ min: 0, max: 39 }),
    });
    const taskArb = fc.record({
      cores: fc.constantFrom(1, 2, 4, 8),
      kind: fc.constantFrom('none', 'selector', 'affinity', 'rack'),
      zones: fc.array(fc.integer({ min: 0, max: 39 }), { minLength: 1, maxLength: 3 }),
    });
    const passArb = fc.record({
      tasks: fc.array(taskArb, { minLength: 1, maxLength: 40 }),
      add: fc.array(hostArb, { maxLength: 20 }),
      relabel: fc.array(fc.nat(), { maxLength: 10 }),
      remove: fc.array(fc.nat(), { maxLength: 10 }),
    });
    fc.assert(
      fc.property(
        fc.array(hostArb, { minLength: 16, maxLength: 120 }),
        fc.array(passArb, { minLength: 1, maxLength: 4 }),
        fc.integer(),
        fc.boolean(),
        (hs, passes, seed, spread) => {
          const index = new HostIndex(seed);
          let n = 0;
          const add = (h: { usedPct: number; zone: number }) =>
            index.addOffer(
              offer(`h${n++}`, 0, 0, {
                attributes: { zone: `z${h.zone}` },
                capacity: cap,
                resources: {
                  cpuMillis: (cap.cpuMillis * (100 - h.usedPct)) / 100,
                  memoryBytes: (cap.memoryBytes * (100 - h.usedPct)) / 100,
                },
              }),
            );
          for (const h of hs) add(h);
          let t = 0;
          for (const p of passes) {
            const tasks = p.tasks.map((x) => {
              const z = x.zones.map((i) => `z${i}`);
              const constraints: Task['constraints'] =
                x.kind === 'selector'
                  ? { nodeSelector: { zone: z[0]! } }
                  : x.kind === 'affinity'
                    ? { nodeAffinity: [[{ key: 'zone', operator: 'In', values: z }]] }
                    : x.kind === 'rack'
                      ? { nodeAffinity: [[{ key: 'rack', operator: 'Exists' }]] }
                      : undefined;
              return task(`t${t}`, x.cores, x.cores * 2, { submittedAt: t++, constraints });
            });
            // The hosts as they are before the pass, for the full scan.
            const before: Offer[] = index.slots.map((s) => ({
              id: `${s.hostname}-now`,
              source: 'kubernetes',
              hostname: s.hostname,
              attributes: s.attributes,
              resources: { ...s.free },
              capacity: { ...s.capacity },
            }));
            const fitness = spread ? 'spread' : 'binpack';
            const res = runPass(index, tasks, {}, resolveOptions({ goodEnough: null, seed, fitness }));
            expect(res.placements.map((x) => `${x.taskId}@${x.hostname}`)).toEqual(
              bruteForce(tasks, before, seed, spread),
            );
            for (const h of p.add) add(h);
            for (const i of p.relabel) {
              const s = index.slots[i % index.slots.length]!;
              index.addOffer(
                offer(s.hostname, 0, 0, { id: `${s.hostname}-r${t}`, attributes: { rack: `${i % 3}` } }),
              );
            }
            for (const i of p.remove) {
              if (index.slots.length > 1) index.removeHost(index.slots[i % index.slots.length]!);
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('scans a bucket again once its remembered best hosts are used up, unless the scan listed every host that fits', () => {
    // Spread takes the emptiest host first, so each of these identical tasks takes a host out of
    // the one bucket of fresh hosts: past SCAN_KEEP (32) placements the remembered list is used
    // up and only a new scan finds the rest; a bucket whose scan listed every host that fits (a
    // zone's 20 hosts) is skipped once they are gone, and tasks of that zone then go unplaced.
    const cap = { cpuMillis: 32_000, memoryBytes: 64 * GiB, diskBytes: 0, gpus: 0 };
    for (const seed of [1, 2, 3]) {
      const offers = Array.from({ length: 80 }, (_, i) =>
        offer(`h${i}`, 32, 64, { capacity: cap, attributes: { zone: i < 20 ? 'a' : 'b' } }),
      );
      const tasks = Array.from({ length: 100 }, (_, i) =>
        task(`t${i}`, 20, 2, {
          submittedAt: i,
          constraints: i % 2 === 0 ? { nodeSelector: { zone: i % 4 === 0 ? 'a' : 'b' } } : undefined,
        }),
      );
      const index = new HostIndex(seed);
      for (const o of offers) index.addOffer(o);
      const res = runPass(index, tasks, {}, resolveOptions({ goodEnough: null, seed, fitness: 'spread' }));
      expect(res.placements.map((p) => `${p.taskId}@${p.hostname}`)).toEqual(
        bruteForce(tasks, offers, seed, true),
      );
      expect(res.placements).toHaveLength(80);
    }
  });

  it('does not scan a bucket again for a task whose complete scan there is used up', () => {
    // 20 hosts of zone a and 60 of zone b, all in one bucket: the first zone-a task's scan lists
    // the 20 (every host that fits), the next 19 take the rest of them, and the 21st finds the
    // list used up and complete, so it skips the bucket instead of checking the 60 again.
    const cap = { cpuMillis: 32_000, memoryBytes: 64 * GiB, diskBytes: 0, gpus: 0 };
    const index = new HostIndex(1);
    for (let i = 0; i < 80; i++) {
      index.addOffer(offer(`h${i}`, 32, 64, { capacity: cap, attributes: { zone: i < 20 ? 'a' : 'b' } }));
    }
    let reads = 0;
    for (const s of index.slots.filter((x) => x.attributes.zone === 'b')) {
      let free = s.freeCpu;
      Object.defineProperty(s, 'freeCpu', {
        get: () => {
          reads++;
          return free;
        },
        set: (v: number) => {
          free = v;
        },
      });
    }
    const tasks = Array.from({ length: 21 }, (_, i) =>
      task(`t${i}`, 20, 2, { submittedAt: i, constraints: { nodeSelector: { zone: 'a' } } }),
    );
    const res = runPass(index, tasks, {}, resolveOptions({ goodEnough: null, seed: 1, fitness: 'spread' }));
    expect(res.placements).toHaveLength(20);
    expect(res.unplaced.map((u) => u.taskId)).toEqual(['t20']);
    expect(reads).toBeLessThanOrEqual(60); // each zone-b host checked once, by the first scan
  });

  it('skips the buckets holding no host whose label set passes the task, without checking their hosts', () => {
    // The tighter bucket holds only zone-b hosts (of 4 racks: 4 label sets);
    // a zone-a task goes straight to the zone-a hosts of the looser bucket.
    const cap = { cpuMillis: 32_000, memoryBytes: 64 * GiB, diskBytes: 0, gpus: 0 };
    const index = new HostIndex(1);
    for (let i = 0; i < 40; i++) {
      const zone = i < 20 ? 'a' : 'b';
      index.addOffer(
        offer(`h${i}`, i < 20 ? 32 : 16, 64, { capacity: cap, attributes: { zone, rack: `${i % 4}` } }),
      );
    }
    let reads = 0;
    for (const s of index.slots.filter((x) => x.attributes.zone === 'b')) {
      const free = s.freeCpu;
      Object.defineProperty(s, 'freeCpu', {
        get: () => {
          reads++;
          return free;
        },
      });
    }
    const res = runPass(
      index,
      [task('t', 1, 1, { constraints: { nodeSelector: { zone: 'a' } } })],
      {},
      resolveOptions({ goodEnough: null, seed: 1 }),
    );
    expect(res.placements[0]!.hostname).toMatch(/^h1?\d$/);
    expect(reads).toBe(0);
  });

  it('checks taints and labels host by host in the mixed class (past maxClasses)', () => {
    const taint: Taint = { key: 'dedicated', value: 'x', effect: 'NoSchedule' };
    const cap = { cpuMillis: 8000, memoryBytes: 32 * GiB, diskBytes: 0, gpus: 0 };
    for (const maxClasses of [0, MAX_HOST_CLASSES]) {
      const index = new HostIndex(1, { maxClasses });
      // Same bucket; the tainted host is the better packed one.
      index.addOffer(offer('tainted', 2, 2, { capacity: cap, taints: [taint] }));
      index.addOffer(offer('zone-b', 2, 4, { capacity: cap, attributes: { zone: 'b' } }));
      index.addOffer(offer('plain', 2, 30, { capacity: cap, attributes: { zone: 'a' } }));
      const tasks = [
        task('any', 1, 1),
        task('zone-a', 1, 1, { constraints: { nodeSelector: { zone: 'a' } } }),
        task('tolerating', 2, 1, {
          constraints: { tolerations: [{ key: 'dedicated', operator: 'Exists' }] },
        }),
      ];
      const res = runPass(index, tasks, {}, resolveOptions({ goodEnough: null }));
      expect(res.placements.map((p) => `${p.taskId}@${p.hostname}`)).toEqual([
        'any@zone-b',
        'tolerating@tainted',
        'zone-a@plain',
      ]);
    }
  });

  it('past the per-pass caps on candidate lists and label memos, still places by labels', () => {
    // 300 distinct selectors: more than MAX_CANDIDATE_LISTS and MAX_LABEL_MEMOS.
    const n = 300;
    expect(n).toBeGreaterThan(Math.max(MAX_CANDIDATE_LISTS, MAX_LABEL_MEMOS));
    const offers = Array.from({ length: n }, (_, i) =>
      offer(`h${i}`, 4, 8, { attributes: { id: String(i) } }),
    );
    const tasks = Array.from({ length: n }, (_, i) =>
      task(`t${i}`, 1, 1, { submittedAt: i, constraints: { nodeSelector: { id: String((i * 7) % n) } } }),
    );
    for (const goodEnough of [0.5, null]) {
      const res = schedulePass({ tasks, offers, now, options: { goodEnough } });
      expect(res.placements.map((p) => p.hostname)).toEqual(tasks.map((_, i) => `h${(i * 7) % n}`));
    }
  });

  it('uses the compiled constraints and candidate list of its own pass, not those an earlier pass made for equal constraints', () => {
    // One index across passes, as the Scheduler keeps it. The selector's label is rare (1 host in
    // 17), so a pass lists the hosts carrying it; a host carrying it added between passes must be
    // in the next pass's list.
    const index = new HostIndex(1);
    for (let i = 0; i < 16; i++)
      index.addOffer(offer(`common-${i}`, 4, 16, { attributes: { pool: 'common' } }));
    index.addOffer(offer('rare-1', 4, 16, { attributes: { pool: 'rare' } }));
    const rare = (id: string) => task(id, 4, 16, { constraints: { nodeSelector: { pool: 'rare' } } });
    const o = resolveOptions({ goodEnough: null });
    const first = runPass(index, [rare('a'), rare('b')], {}, o);
    expect(first.placements.map((p) => [p.taskId, p.hostname])).toEqual([['a', 'rare-1']]);
    expect(first.unplaced.map((u) => u.taskId)).toEqual(['b']);
    index.addOffer(offer('rare-2', 4, 16, { attributes: { pool: 'rare' } }));
    // Other task objects with equal constraints share what passes make for those constraints.
    const second = runPass(index, [rare('b2')], {}, o);
    expect(second.placements.map((p) => [p.taskId, p.hostname])).toEqual([['b2', 'rare-2']]);
    // What a pass made for the constraints (a byte per host, lists of hosts) is not kept after it.
    expect(constraintSetsHoldingPassData()).toBe(0);
  });

  it('keeps the interned task keys within MAX_INTERNED_CHARS, also under long task-chosen constraints', () => {
    // Tasks choose their constraints: selectors, affinity values and toleration values of 32 Ki
    // characters each, more in all than the bound, and a few far longer. Placements stay right
    // after the table restarts.
    const n = Math.ceil(MAX_INTERNED_CHARS / 32_768) + 8;
    const giant = (i: number) => i % 50 === 0 || i === n - 1;
    const long = (i: number, c: string) => c.repeat(giant(i) ? MAX_INTERNED_CHARS : 32_768) + String(i);
    const offers = [offer('a', 64, 64, { attributes: { zone: 'a' } }), offer('b', 64, 64)];
    const tasks = Array.from({ length: n }, (_, i) => {
      const kind = i % 3;
      const constraints: Task['constraints'] =
        kind === 0
          ? { nodeAffinity: [[{ key: 'zone', operator: 'NotIn', values: [long(i, 'x')] }]] }
          : kind === 1
            ? { nodeSelector: { [long(i, 'k')]: 'v' } }
            : { tolerations: [{ key: 'dedicated', value: long(i, 'v') }] };
      return task(`t${i}`, 0.1, 0.1, { submittedAt: i, constraints });
    });
    const res = schedulePass({ tasks, offers, now, options: { goodEnough: null } });
    expect(internedKeyChars()).toBeLessThanOrEqual(MAX_INTERNED_CHARS);
    expect(internedKeyChars()).toBeGreaterThan(0);
    // The constraint sets shared by equal keys go with the interned keys: emptied when the table
    // restarted, so they hold only the sets made since (each task's constraints differ).
    expect(constraintSetCount()).toBeGreaterThan(0);
    expect(constraintSetCount()).toBeLessThan(n / 2);
    // Selector tasks need a label no host has; the others fit anywhere.
    expect(res.placements.map((p) => p.taskId)).toEqual(tasks.filter((_, i) => i % 3 !== 1).map((t) => t.id));
  });

  it('keys equal constraints written differently alike, and different ones apart', () => {
    const key = (constraints: Task['constraints']) => constraintKey(task('t', 1, 1, { constraints }));
    const req = (operator: 'In' | 'NotIn' | 'Gt', values: string[]) => ({ key: 'zone', operator, values });
    expect(key({ attributes: [req('In', ['a', 'b'])] })).toBe(
      key({ attributes: [req('In', ['b', 'a', 'b'])] }),
    );
    expect(key({ nodeAffinity: [[req('NotIn', ['c', 'a'])]] })).toBe(
      key({ nodeAffinity: [[req('NotIn', ['a', 'c'])]] }),
    );
    expect(key({ nodeSelector: { x: '1', y: '2' } })).toBe(key({ nodeSelector: { y: '2', x: '1' } }));
    expect(key({ attributes: [req('In', ['a'])] })).not.toBe(key({ attributes: [req('In', ['a', 'b'])] }));
    expect(key({ attributes: [req('In', ['a'])] })).not.toBe(key({ attributes: [req('NotIn', ['a'])] }));
    expect(key({ attributes: [req('In', ['a'])] })).not.toBe(key({ nodeAffinity: [[req('In', ['a'])]] }));
    expect(key({ nodeAffinity: [[req('In', ['a'])], [req('In', ['b'])]] })).not.toBe(
      key({ nodeAffinity: [[req('In', ['a']), req('In', ['b'])]] }),
    );
    expect(key({ nodeSelector: { x: '1' } })).not.toBe(key({ nodeSelector: { x: '2' } }));
    expect(key(undefined)).toBe('');
  });

  it('is deterministic for a seed; the seed only breaks ties', () => {
    const offers = Array.from({ length: 50 }, (_, i) => offer(`h${i}`, 8, 32));
    const tasks = Array.from({ length: 30 }, (_, i) => task(`t${i}`, 3, 1, { submittedAt: i }));
    const run = (seed: number) =>
      schedulePass({ tasks, offers, now, options: { seed } }).placements.map((p) => p.hostname);
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
    // Different tie-breaks, same packing: 30 tasks of 3 cores on 8-core hosts use 15 hosts either way.
    expect(new Set(run(7)).size).toBe(15);
    expect(new Set(run(8)).size).toBe(15);
  });
});

describe('typed outcomes: does not fit vs broke', () => {
  it('an invalid task is "broke" with a code and the field; the others still place', () => {
    const bad = task('bad', 1, 1, { resources: { cpuMillis: -5 } });
    const res = schedulePass({ tasks: [bad, task('ok', 1, 1)], offers: [offer('h', 4, 4)], now });
    expect(res.placements.map((p) => p.taskId)).toEqual(['ok']);
    expect(res.unplaced[0]).toMatchObject({
      taskId: 'bad',
      outcome: 'broke',
      error: {
        code: 'SCHEDULER_TASK_INVALID',
        message: 'task bad: resources.cpuMillis: expected a non-negative integer, got -5',
      },
    });
  });

  it('malformed constraint lists are "broke" with the field, whatever their type; the others still place', () => {
    const cases: [string, unknown, string][] = [
      ['attributes', { key: 'zone' }, 'constraints.attributes: expected a list'],
      ['attributes', 'zone', 'constraints.attributes: expected a list'],
      ['attributes', [7], 'constraints.attributes[0]: expected {key, operator, values}'],
      ['attributes', [{ key: 'zone', operator: 'Near' }], 'constraints.attributes[0].operator: expected In'],
      ['nodeAffinity', { 0: [] }, 'constraints.nodeAffinity: expected a list of terms'],
      ['nodeAffinity', [[], 'x'], 'constraints.nodeAffinity[1]: expected a list of requirements'],
      [
        'nodeAffinity',
        [[{ key: 'n', operator: 'Gt', values: ['x'] }]],
        'constraints.nodeAffinity[0][0].values: Gt needs one number',
      ],
      ['tolerations', 7, 'constraints.tolerations: expected a list'],
      ['tolerations', [null], 'constraints.tolerations[0]: expected an object'],
      [
        'tolerations',
        [{ key: 'a', effect: 'Never' }],
        'constraints.tolerations[0].effect: expected NoSchedule',
      ],
    ];
    for (const [field, value, message] of cases) {
      const bad = task('bad', 1, 1, { constraints: { [field]: value } as Task['constraints'] });
      const res = schedulePass({ tasks: [bad, task('ok', 1, 1)], offers: [offer('h', 4, 4)], now });
      expect(res.placements.map((p) => p.taskId)).toEqual(['ok']);
      expect(res.unplaced[0]!.error!.code).toBe('SCHEDULER_TASK_INVALID');
      expect(res.unplaced[0]!.error!.message).toContain(`task bad: ${message}`);
    }
  });

  it('a duplicate id is "broke"', () => {
    const res = schedulePass({ tasks: [task('a', 1, 1), task('a', 1, 1)], offers: [offer('h', 4, 4)], now });
    expect(res.placements).toHaveLength(1);
    expect(res.unplaced[0]!.error!.code).toBe('SCHEDULER_TASK_DUPLICATE');
  });

  it('a filter plugin refuses hosts (with its reason); one that throws makes the task "broke"', () => {
    const noOdd = {
      name: 'no-odd',
      filter: (_t: Task, h: HostView) => (h.hostname.endsWith('1') ? 'odd host' : undefined),
    };
    const res = schedulePass({
      tasks: [task('a', 4, 1), task('b', 4, 1)],
      offers: [offer('h0', 4, 4), offer('h1', 4, 4)],
      now,
      options: { filters: [noOdd] },
    });
    expect(res.placements.map((p) => p.hostname)).toEqual(['h0']);
    expect(res.unplaced[0]!.reasons.map((r) => r.message)).toEqual([
      'no-odd: 1 of 2 hosts refused: odd host',
      'cpus: 1 of 2 hosts lacked it (requested 4, most free on those hosts 0)',
    ]);
    const thrower = {
      name: 'explodes',
      filter: (): string | undefined => {
        throw new Error('boom');
      },
    };
    const broke = schedulePass({
      tasks: [task('a', 1, 1)],
      offers: [offer('h0', 4, 4)],
      now,
      options: { filters: [thrower] },
    });
    expect(broke.unplaced[0]).toMatchObject({
      outcome: 'broke',
      error: { code: 'SCHEDULER_PLUGIN_FAILED', message: 'filter explodes: boom' },
    });
  });
});

describe('offers in a pure pass', () => {
  it('declines expired and malformed offers and does not use them', () => {
    const res = schedulePass({
      tasks: [task('t', 1, 1)],
      offers: [
        offer('old', 8, 8, { id: 'o-old', expiresAt: 100 }),
        {
          ...offer('bad', 8, 8, { id: 'o-bad' }),
          resources: { cpuMillis: 1.5, memoryBytes: 0, diskBytes: 0, gpus: 0 },
        },
        offer('fresh', 8, 8, { id: 'o-fresh', expiresAt: 101 }),
      ],
      now: 100,
    });
    expect(res.placements.map((p) => p.offerIds)).toEqual([['o-fresh']]);
    expect(res.declines).toEqual([
      { offerId: 'o-old', hostname: 'old', source: 'kubernetes', reason: 'expired' },
      {
        offerId: 'o-bad',
        hostname: 'bad',
        source: 'kubernetes',
        reason: 'invalid',
        message: 'offer o-bad: resources.cpuMillis: expected a non-negative integer, got 1.5',
      },
    ]);
  });

  it('merges offers of one host and names all of them in the placement', () => {
    const res = schedulePass({
      tasks: [task('t', 3, 1)],
      offers: [
        offer('h', 2, 2, { id: 'o1', source: 'mesos', agentId: 'agent-1' }),
        offer('h', 2, 2, { id: 'o2', source: 'mesos' }),
      ],
      now,
    });
    expect(res.placements[0]).toMatchObject({ hostname: 'h', agentId: 'agent-1', offerIds: ['o1', 'o2'] });
  });
});
