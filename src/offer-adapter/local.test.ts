import { describe, expect, it } from 'vitest';
import { LocalOfferSource } from './local.ts';

describe('LocalOfferSource', () => {
  const req = (cpuMillis: number, memoryBytes: number) => ({ cpuMillis, memoryBytes, diskBytes: 0, gpus: 0 });

  it('offers the machine minus what running steps hold', () => {
    const src = new LocalOfferSource({ hostname: 'h', capacity: { cpuMillis: 2000, memoryBytes: 1000 } });
    expect(src.offers(1)[0]).toMatchObject({
      source: 'local',
      hostname: 'h',
      resources: { cpuMillis: 2000, memoryBytes: 1000 },
    });
    src.hold('a', req(500, 100));
    src.hold('b', req(1000, 300));
    expect(src.offers(2)[0]?.resources).toMatchObject({ cpuMillis: 500, memoryBytes: 600 });
    src.release('a');
    src.release('a'); // idempotent
    expect(src.offers(3)[0]?.resources).toMatchObject({ cpuMillis: 1000, memoryBytes: 700 });
    src.hold('b', req(100, 0)); // a second hold replaces the first
    expect(src.usage()).toMatchObject({ cpuMillis: 100, memoryBytes: 0 });
  });

  it('never offers negative amounts when steps hold more than the machine has', () => {
    const src = new LocalOfferSource({ hostname: 'h', capacity: { cpuMillis: 1000, memoryBytes: 10 } });
    src.hold('a', req(1500, 20));
    expect(src.offers(1)[0]?.resources).toMatchObject({ cpuMillis: 0, memoryBytes: 0 });
  });

  it('defaults to the real machine', () => {
    const src = new LocalOfferSource();
    expect(src.capacity.cpuMillis).toBeGreaterThan(0);
    expect(src.capacity.memoryBytes).toBeGreaterThan(0);
  });
});
