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
