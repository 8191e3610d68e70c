import { describe, expect, it } from 'vitest';
import { Lru } from './lru.ts';

describe('Lru', () => {
  it('keeps recently used entries and never exceeds its capacity', () => {
    const c = new Lru<number, string>(4);
    for (let i = 0; i < 4; i++) c.set(i, `v${i}`);
    expect(c.get(0)).toBe('v0'); // used: survives the next rotation
    c.set(4, 'v4');
    c.set(5, 'v5');
    expect(c.get(0)).toBe('v0');
    expect(c.get(1)).toBeUndefined();
    for (let i = 10; i < 100; i++) {
      c.set(i, `v${i}`);
      expect(c.size).toBeLessThanOrEqual(4);
    }
    expect(c.get(99)).toBe('v99');
  });
});
