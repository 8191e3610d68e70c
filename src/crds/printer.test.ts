import { describe, expect, it } from 'vitest';
import { formatRunDuration } from './printer.ts';

const at = (seconds: number) => new Date(Date.UTC(2026, 0, 1) + seconds * 1000).toISOString();

describe('formatRunDuration', () => {
  it.each([
    [0, '0ms'],
    [0.35, '350ms'],
    [0.9994, '999ms'],
    [1, '1s'],
    [2.56, '2.5s'],
    [45.9, '45s'],
    [60, '1m'],
    [192, '3m12s'],
    [3600, '1h'],
    [2 * 3600 + 5 * 60 + 7, '2h5m'],
    [3 * 86_400 + 4 * 3600 + 59, '3d4h'],
    [86_400, '1d'],
  ])('%s seconds is %s', (seconds, text) => {
    expect(formatRunDuration(at(0), at(seconds))).toBe(text);
  });

  it('is undefined until the run has ended, and never negative', () => {
    expect(formatRunDuration(at(0), undefined)).toBeUndefined();
    expect(formatRunDuration(undefined, at(5))).toBeUndefined();
    expect(formatRunDuration('not a time', at(5))).toBeUndefined();
    expect(formatRunDuration(at(10), at(5))).toBe('0ms');
  });
});
