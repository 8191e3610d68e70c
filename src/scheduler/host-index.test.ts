import { describe, expect, it } from 'vitest';
import { HostIndex } from './host-index.ts';
import { GiB, offer } from './test-helpers.ts';

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
    const index = new HostIndex(1);
    const tainted = index.addOffer(
      offer('t', 4, 64, { taints: [{ key: 'dedicated', value: 'x', effect: 'NoSchedule' }] }),
    );
    const plain = index.addOffer(offer('p', 4, 8, { resources: { gpus: 2 } }));
    const b = tainted.bucket;
    expect(plain.bucket).toBe(b);
    expect(index.bucketMaxFreeMem[b]).toBe(64 * GiB);
    expect(index.bucketMaxFreeMemUntainted[b]).toBe(8 * GiB);
    expect(index.bucketMaxFreeGpus[b]).toBe(2);
    // Lazy: a charge that keeps the host in the bucket does not lower the bound...
    index.charge(tainted, { cpuMillis: 50, memoryBytes: 60 * GiB, diskBytes: 0, gpus: 0 });
    expect(index.bucketMaxFreeMem[b]).toBe(64 * GiB);
    // ...a full scan tightens it, and an emptied bucket forgets it.
    index.tighten(b, 8 * GiB, 8 * GiB, 2);
    expect(index.bucketMaxFreeMem[b]).toBe(8 * GiB);
    index.unbucket(tainted);
    index.unbucket(plain);
    expect(index.bucketMaxFreeMem[b]).toBe(-1);
    expect(index.bucketMaxFreeGpus[b]).toBe(-1);
  });

  it('minMemUsedUpTo is the smallest memory share of any bucket at or below b', () => {
    const index = new HostIndex(1);
    const cap = { cpuMillis: 16_000, memoryBytes: 16 * GiB, diskBytes: 0, gpus: 0 };
    index.addOffer(offer('low', 1, 4, { capacity: cap })); // bucket 10, 75% of memory used
    index.addOffer(offer('mid', 8, 12, { capacity: cap })); // bucket 80, 25% used
    index.addOffer(offer('high', 16, 8, { capacity: cap })); // bucket 160, 50% used
    expect(index.minMemUsedUpTo(10)).toBe(0.75);
    expect(index.minMemUsedUpTo(79)).toBe(0.75);
    expect(index.minMemUsedUpTo(80)).toBe(0.25);
    expect(index.minMemUsedUpTo(HostIndex.LAST_BUCKET)).toBe(0.25);
    index.unbucket(index.byName.get('mid')!);
    expect(index.minMemUsedUpTo(HostIndex.LAST_BUCKET)).toBe(0.5);
  });
});
