import { describe, expect, it } from 'vitest';
import { jsonLines, lineDiff } from './diff.js';

/** Rebuilds both sides from a diff: a is ' ' and '-', b is ' ' and '+'. */
function sides(lines: { op: string; text: string }[]) {
  return {
    a: lines.filter((l) => l.op !== '+').map((l) => l.text),
    b: lines.filter((l) => l.op !== '-').map((l) => l.text),
  };
}

describe('lineDiff', () => {
  it('marks the changed line and keeps the rest', () => {
    const d = lineDiff(['a', 'b', 'c'], ['a', 'x', 'c']);
    expect(d.lines).toEqual([
      { op: ' ', text: 'a' },
      { op: '-', text: 'b' },
      { op: '+', text: 'x' },
      { op: ' ', text: 'c' },
    ]);
  });

  it('finds a shortest edit script (random inputs rebuild both sides, edits minimal against LCS)', () => {
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let t = 0; t < 300; t++) {
      const a = Array.from({ length: rnd(12) }, () => 'abcd'[rnd(4)]!);
      const b = Array.from({ length: rnd(12) }, () => 'abcd'[rnd(4)]!);
      const d = lineDiff(a, b);
      expect(sides(d.lines!)).toEqual({ a, b });
      // the number of unchanged lines is the longest common subsequence
      const lcs = Array.from({ length: a.length + 1 }, () => new Array(b.length + 1).fill(0));
      for (let i = 1; i <= a.length; i++)
        for (let j = 1; j <= b.length; j++)
          lcs[i][j] = a[i - 1] === b[j - 1] ? lcs[i - 1][j - 1] + 1 : Math.max(lcs[i - 1][j], lcs[i][j - 1]);
      expect(d.lines!.filter((l) => l.op === ' ').length).toBe(lcs[a.length][b.length]);
    }
  });

  it('handles empty sides', () => {
    expect(lineDiff([], ['x']).lines).toEqual([{ op: '+', text: 'x' }]);
    expect(lineDiff(['x'], []).lines).toEqual([{ op: '-', text: 'x' }]);
    expect(lineDiff([], []).lines).toEqual([]);
  });

  it('gives up past the edit bound instead of running long (bounded time and memory)', () => {
    const a = Array.from({ length: 50_000 }, (_, i) => `a${i}`);
    const b = Array.from({ length: 50_000 }, (_, i) => `b${i}`);
    const t0 = performance.now();
    expect(lineDiff(a, b)).toEqual({ tooDifferent: true });
    expect(performance.now() - t0).toBeLessThan(5000);
    // a small change in a large text is cheap: the common ends are cut first
    const c = [...a];
    c[25_000] = 'changed';
    const d = lineDiff(a, c);
    expect(d.lines!.filter((l) => l.op !== ' ')).toEqual([
      { op: '-', text: 'a25000' },
      { op: '+', text: 'changed' },
    ]);
  });
});

describe('jsonLines', () => {
  it('sorts keys so that reordered fields are no change', () => {
    expect(jsonLines({ b: 1, a: { d: 2, c: 3 } })).toEqual(jsonLines({ a: { c: 3, d: 2 }, b: 1 }));
  });
});
