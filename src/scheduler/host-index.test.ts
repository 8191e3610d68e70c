import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { COVER_ALL, COVER_NONE, COVER_SOME, HardConstraints } from './constraints.ts';
import { HostIndex } from './host-index.ts';
import { GiB, offer, task } from './test-helpers.ts';
import type { AttributeRequirement, Task } from './types.ts';

function summed(index: HostIndex) {
  const cap = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  const free = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  for (const s of index.slots) {
    for (const k of ['cpuMillis', 'memoryBytes', 'diskBytes', 'gpus'] as const) {
      cap[k] += s.capacity[k];
      free[k] += s.free[k];
    }
  }
  return { capacity: cap, free };
}

describe('HostIndex totals', () => {
  it('stay equal to the sums over hosts through adds, replacements, removals and charges', () => {
    const index = new HostIndex(1);
    index.addOffer(offer('a', 4, 8));
    index.addOffer(
      offer('b', 2, 4, { capacity: { cpuMillis: 8000, memoryBytes: 16 * GiB, diskBytes: 0, gpus: 1 } }),
    );
    index.addOffer(offer('a', 1, 1, { id: 'a-second' }));
    expect(index.totals()).toEqual(summed(index));
    index.charge(index.byName.get('a')!, { cpuMillis: 1500, memoryBytes: 2 * GiB, diskBytes: 0, gpus: 0 });
    expect(index.totals()).toEqual(summed(index));
    index.removeOffer('a-second', 'a');
    expect(index.totals()).toEqual(summed(index));
    index.removeOffer('b-offer', 'b');
    index.removeOffer('b-offer', 'b');
    expect(index.totals()).toEqual(summed(index));
    expect(index.size).toBe(1);
  });

  it('lists each host placed on once, until drained', () => {
    const index = new HostIndex(1);
    index.addOffer(offer('a', 4, 8));
    const a = index.byName.get('a')!;
    const r = { cpuMillis: 100, memoryBytes: GiB, diskBytes: 0, gpus: 0 };
    index.charge(a, r);
    index.charge(a, r);
    expect(index.drainUsed()).toEqual([a]);
    expect(a.used).toBe(false);
    expect(index.drainUsed()).toEqual([]);
  });
});

describe('HostIndex per-bucket bounds', () => {
  it('free memory and GPU bounds never fall below a host of the bucket; untainted ones ignore tainted hosts', () => {
    // All in the mixed class (maxClasses 0), where tainted and untainted hosts share buckets.
    const index = new HostIndex(1, { maxClasses: 0 });
    const tainted = index.addOffer(
      offer('t', 4, 64, { taints: [{ key: 'dedicated', value: 'x', effect: 'NoSchedule' }] }),
    );
    const plain = index.addOffer(offer('p', 4, 8, { resources: { gpus: 2 } }));
    const b = tainted.bucket;
    const cls = tainted.cls!;
    expect(plain.cls).toBe(cls);
    expect(cls.uniform).toBe(false);
    expect(plain.bucket).toBe(b);
    expect(cls.bucketMaxFreeMem[b]).toBe(64 * GiB);
    expect(cls.bucketMaxFreeMemUntainted[b]).toBe(8 * GiB);
    expect(cls.bucketMaxFreeGpus[b]).toBe(2);
    // Lazy: a charge that keeps the host in the bucket does not lower the bound...
    index.charge(tainted, { cpuMillis: 50, memoryBytes: 60 * GiB, diskBytes: 0, gpus: 0 });
    expect(cls.bucketMaxFreeMem[b]).toBe(64 * GiB);
    // ...a full scan tightens it, and an emptied bucket forgets it.
    expect(cls.bucketLabelBits[b]).toBe(tainted.labelBit | plain.labelBit);
    cls.tighten(b, 8 * GiB, 8 * GiB, 2, plain.labelBit);
    expect(cls.bucketMaxFreeMem[b]).toBe(8 * GiB);
    expect(cls.bucketLabelBits[b]).toBe(plain.labelBit);
    cls.unbucket(tainted);
    cls.unbucket(plain);
    expect(cls.bucketMaxFreeMem[b]).toBe(-1);
    expect(cls.bucketMaxFreeGpus[b]).toBe(-1);
    expect(cls.bucketLabelBits[b]).toBe(0);
  });

  it('minMemUsedUpTo is the smallest memory share of any bucket at or below b', () => {
    const index = new HostIndex(1);
    const cap = { cpuMillis: 16_000, memoryBytes: 16 * GiB, diskBytes: 0, gpus: 0 };
    index.addOffer(offer('low', 1, 4, { capacity: cap })); // bucket 10, 75% of memory used
    index.addOffer(offer('mid', 8, 12, { capacity: cap })); // bucket 80, 25% used
    index.addOffer(offer('high', 16, 8, { capacity: cap })); // bucket 160, 50% used
    const cls = index.byName.get('low')!.cls!; // one capacity: one class
    expect(index.classes).toEqual([cls]);
    expect(cls.minMemUsedUpTo(10)).toBe(0.75);
    expect(cls.minMemUsedUpTo(79)).toBe(0.75);
    expect(cls.minMemUsedUpTo(80)).toBe(0.25);
    expect(cls.minMemUsedUpTo(HostIndex.LAST_BUCKET)).toBe(0.25);
    cls.unbucket(index.byName.get('mid')!);
    expect(cls.minMemUsedUpTo(HostIndex.LAST_BUCKET)).toBe(0.5);
  });
});

describe('HostIndex classes', () => {
  const cap = (cores: number, memGi: number, gpus = 0) => ({
    cpuMillis: cores * 1000,
    memoryBytes: memGi * GiB,
    diskBytes: 0,
    gpus,
  });
  const gpuTaint = { key: 'nvidia.com/gpu', effect: 'NoSchedule' as const };

  it('groups hosts by capacity and blocking taints; a host moves when either changes', () => {
    const index = new HostIndex(1);
    const a = index.addOffer(offer('a', 4, 8, { capacity: cap(8, 16) }));
    const b = index.addOffer(offer('b', 8, 16, { capacity: cap(8, 16) }));
    const c = index.addOffer(offer('c', 8, 16, { capacity: cap(8, 32) }));
    const g = index.addOffer(offer('g', 8, 16, { capacity: cap(8, 16, 4), taints: [gpuTaint] }));
    // PreferNoSchedule does not block: same class as a and b.
    const p = index.addOffer(
      offer('p', 8, 16, { capacity: cap(8, 16), taints: [{ key: 'x', effect: 'PreferNoSchedule' }] }),
    );
    expect(b.cls).toBe(a.cls);
    expect(p.cls).toBe(a.cls);
    expect(c.cls).not.toBe(a.cls);
    expect(g.cls!.capGpus).toBe(4);
    expect(g.cls!.blockingTaints).toEqual([gpuTaint]);
    expect(a.cls!.size).toBe(3);
    // A second offer with a taint moves b to a new class; removing it moves b back.
    index.addOffer({ ...offer('b', 0, 0), id: 'b-2', taints: [{ key: 'd', effect: 'NoExecute' }] });
    expect(b.cls).not.toBe(a.cls);
    expect(a.cls!.size).toBe(2);
    index.removeOffer('b-2', 'b');
    expect(b.cls).toBe(a.cls);
    expect(a.cls!.size).toBe(3);
    expect(a.cls!.buckets[b.bucket]).toContain(b);
    index.removeHost(b);
    expect(a.cls!.size).toBe(2);
    expect(a.cls!.buckets[b.bucket] ?? []).not.toContain(b);
  });

  it('counts label values per class, so a search can skip classes no host of which matches', () => {
    const index = new HostIndex(1);
    const a = index.addOffer(
      offer('a', 8, 16, { capacity: cap(8, 16), attributes: { zone: 'a', pool: 'cpu' } }),
    );
    index.addOffer(offer('b', 8, 16, { capacity: cap(8, 16), attributes: { zone: 'b', pool: 'cpu' } }));
    const values = a.cls!.labelValues;
    expect([...values.get('zone')!]).toEqual([
      ['a', 1],
      ['b', 1],
    ]);
    expect(values.get('pool')!.get('cpu')).toBe(2);
    const hard = (constraints: Task['constraints']) =>
      new HardConstraints(task('t', 1, 1, { constraints }), {
        reserveGpuHosts: false,
        groupHosts: undefined,
      });
    expect(hard({ nodeSelector: { zone: 'b' } }).mayMatch(values)).toBe(true);
    expect(hard({ nodeSelector: { zone: 'c' } }).mayMatch(values)).toBe(false);
    expect(
      hard({ attributes: [{ key: 'pool', operator: 'In', values: ['gpu', 'cpu'] }] }).mayMatch(values),
    ).toBe(true);
    expect(hard({ attributes: [{ key: 'disk', operator: 'Exists' }] }).mayMatch(values)).toBe(false);
    expect(hard({ attributes: [{ key: 'disk', operator: 'DoesNotExist' }] }).mayMatch(values)).toBe(true);
    const term = (pool: string) => [{ key: 'pool', operator: 'In' as const, values: [pool] }];
    expect(hard({ nodeAffinity: [term('gpu'), term('mem')] }).mayMatch(values)).toBe(false);
    expect(hard({ nodeAffinity: [term('gpu'), term('cpu')] }).mayMatch(values)).toBe(true);
    index.removeHost(a);
    expect([...values.get('zone')!.keys()]).toEqual(['b']);
    expect(hard({ nodeSelector: { zone: 'a' } }).mayMatch(values)).toBe(false);
  });

  it('label coverage and lower bound from the counts never contradict the hosts (every operator)', () => {
    // A class of hosts with random labels; random selectors, requirements and affinity terms.
    // COVER_ALL must mean every host passes, COVER_NONE none, the lower bound at most the count.
    const valueArb = fc.option(fc.constantFrom('a', 'b', 'c', '1', '5', '10', '-2'), { nil: undefined });
    const reqArb = fc.record({
      key: fc.constantFrom('zone', 'rank', 'ssd'),
      operator: fc.constantFrom('In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'),
      values: fc.array(fc.constantFrom('a', 'b', 'c', '1', '5', '10', '-2'), { minLength: 1, maxLength: 3 }),
    });
    fc.assert(
      fc.property(
        fc.array(fc.record({ zone: valueArb, rank: valueArb, ssd: valueArb }), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.option(fc.dictionary(fc.constantFrom('zone', 'rank'), fc.constantFrom('a', 'b', '5')), {
          nil: undefined,
        }),
        fc.option(fc.array(reqArb, { maxLength: 2 }), { nil: undefined }),
        fc.option(fc.array(fc.array(reqArb, { maxLength: 3 }), { maxLength: 3 }), { nil: undefined }),
        (labels, nodeSelector, attributes, nodeAffinity) => {
          const index = new HostIndex(1);
          const slots = labels.map((l, i) => {
            const attributes: Record<string, string> = {};
            for (const [k, v] of Object.entries(l)) if (v !== undefined) attributes[k] = v;
            return index.addOffer(offer(`h${i}`, 8, 16, { capacity: cap(8, 16), attributes }));
          });
          const cls = slots[0]!.cls!;
          expect(index.classes).toEqual([cls]);
          const constraints: Task['constraints'] = {};
          if (nodeSelector) constraints.nodeSelector = nodeSelector;
          if (attributes) constraints.attributes = attributes as AttributeRequirement[];
          if (nodeAffinity) constraints.nodeAffinity = nodeAffinity as AttributeRequirement[][];
          const hard = new HardConstraints(task('t', 1, 1, { constraints }), {
            reserveGpuHosts: false,
            groupHosts: undefined,
          });
          const passing = slots.filter((s) => hard.labelsHold(s.attributes)).length;
          const cover = hard.labelCoverage(cls.labelValues, cls.labelTotals, cls.size);
          if (cover === COVER_ALL) expect(passing).toBe(slots.length);
          if (cover === COVER_NONE) expect(passing).toBe(0);
          if (passing > 0) expect(hard.mayMatch(cls.labelValues)).toBe(true);
          const atLeast = hard.labelLowerBound(cls.labelValues, cls.labelTotals, cls.size);
          expect(atLeast).toBeGreaterThanOrEqual(0);
          expect(atLeast).toBeLessThanOrEqual(passing);
          // A single requirement is counted exactly.
          const single = (attributes?.length ?? 0) + Object.keys(nodeSelector ?? {}).length;
          if (single === 1 && nodeAffinity === undefined) {
            expect(atLeast).toBe(passing);
            expect(cover).toBe(
              passing === 0 ? COVER_NONE : passing === slots.length ? COVER_ALL : COVER_SOME,
            );
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('gives hosts with equal labels one label set when their labels are set, freed with its last host and reused', () => {
    const index = new HostIndex(1);
    const add = (name: string, attributes: Record<string, string>) =>
      index.addOffer(offer(name, 8, 16, { attributes }));
    const a = add('a', { zone: 'a', pool: 'cpu' });
    const b = add('b', { pool: 'cpu', zone: 'a' }); // same labels, other order
    const c = add('c', { zone: 'b', pool: 'cpu' });
    const d = add('d', { 'zone=b': '', pool: 'cpu' }); // no confusion of keys and values
    const sets = [a, b, c, d].map((s) => index.labelSetOf(s));
    expect(sets[0]).toBe(sets[1]);
    expect(new Set(sets).size).toBe(3);
    expect(index.labelSetLimit).toBe(3);
    // New labels on a host (a second offer): it leaves its set; c's set goes with its host.
    index.addOffer(offer('a', 1, 1, { id: 'a-2', attributes: { rack: '7' } }));
    expect(a.labelSet).not.toBe(sets[0]);
    expect(index.labelSetOf(a)).toBe(a.labelSet);
    expect(index.labelSetOf(b)).toBe(sets[0]);
    index.removeHost(c);
    const e = add('e', { zone: 'c' });
    expect(index.labelSetOf(e)).toBe(sets[2]); // reused
    expect(index.labelSetOf(b)).toBe(sets[0]);
    expect(index.labelSetLimit).toBeLessThanOrEqual(index.size);
  });

  it('gives two hosts one label set exactly when their labels are equal, as hosts come, go and change labels', () => {
    const labelsArb = fc.dictionary(
      fc.constantFrom('zone', 'rack', 'pool', 'a', 'b'),
      fc.constantFrom('a', 'b', '', 'zone'),
      {
        maxKeys: 4,
      },
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant('add' as const), labels: labelsArb }),
            fc.record({ op: fc.constant('relabel' as const), host: fc.nat(), labels: labelsArb }),
            fc.record({ op: fc.constant('remove' as const), host: fc.nat() }),
          ),
          { maxLength: 60 },
        ),
        (ops) => {
          const index = new HostIndex(1);
          let n = 0;
          for (const x of ops) {
            if (x.op === 'add') index.addOffer(offer(`h${n++}`, 1, 1, { attributes: x.labels }));
            else if (index.slots.length > 0) {
              const s = index.slots[x.host % index.slots.length]!;
              if (x.op === 'remove') index.removeHost(s);
              else
                index.addOffer(offer(s.hostname, 0, 0, { id: `${s.hostname}-${n++}`, attributes: x.labels }));
            }
          }
          const text = (l: Record<string, string>) => JSON.stringify(Object.entries(l).sort());
          for (const a of index.slots) {
            expect(a.labelSet).toBe(index.labelSetOf(a));
            expect(index.labelSetLimit).toBeGreaterThan(a.labelSet);
            for (const b of index.slots) {
              expect(a.labelSet === b.labelSet).toBe(text(a.attributes) === text(b.attributes));
            }
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('past maxClasses, new kinds of host share one mixed class', () => {
    const index = new HostIndex(1, { maxClasses: 2 });
    const hosts = [8, 16, 32, 64].map((cores) =>
      index.addOffer(offer(`h${cores}`, cores, 8, { capacity: cap(cores, 8) })),
    );
    expect(index.classes.map((x) => x.uniform)).toEqual([true, true, false]);
    expect(hosts[2]!.cls).toBe(hosts[3]!.cls);
    expect(hosts[2]!.cls!.maxCapCpu).toBe(64_000);
    expect(hosts[2]!.cls!.minCapCpu).toBe(32_000);
  });
});
