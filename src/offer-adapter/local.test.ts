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

  it('never fits a step whose constraints its fixed attributes fail, saying which', () => {
    const src = new LocalOfferSource({ hostname: 'h', capacity: { cpuMillis: 1000, memoryBytes: 10 } });
    const none = req(0, 0);
    expect(src.neverFits(none, { nodeSelector: { 'meson.dev/source': 'local' } })).toBeUndefined();
    expect(
      src.neverFits(none, { attributes: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['h'] }] }),
    ).toBeUndefined();
    expect(src.neverFits(none, { uniqueHost: true })).toBeUndefined(); // depends on what runs
    expect(
      src.neverFits(none, { attributes: [{ key: 'meson.dev/source', operator: 'In', values: ['mesos'] }] }),
    ).toBe(
      'cannot run on this machine: its constraints ask for meson.dev/source in (mesos) ' +
        "(the machine's attributes: kubernetes.io/hostname=h, meson.dev/source=local)",
    );
    // inherited names are not attributes
    expect(src.neverFits(none, { nodeSelector: { constructor: 'x', toString: 'y' } })).toMatch(
      /ask for constructor=x, toString=y/,
    );
    expect(src.neverFits(req(2000, 0), { nodeAffinity: [] })).toMatch(
      /the step asks for cpus 2 \(the machine has 1\); its constraints ask for node affinity no terms/,
    );
  });

  it('defaults to the real machine', () => {
    const src = new LocalOfferSource();
    expect(src.capacity.cpuMillis).toBeGreaterThan(0);
    expect(src.capacity.memoryBytes).toBeGreaterThan(0);
  });
});
