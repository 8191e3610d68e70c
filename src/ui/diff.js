// A line diff (Myers' O(ND) algorithm) for comparing two workflow versions in the browser.
// Bounded: past `maxEdits` differing lines the answer is "too different" rather than a long
// computation, so a huge or hostile definition cannot freeze the page.

/** Most inserted + deleted lines the diff looks for before giving up (default). */
export const MAX_EDITS = 2000;

/**
 * The lines of `a` and `b` as a list of `{op: ' ' | '-' | '+', text}` (unchanged, only in a,
 * only in b), or `{tooDifferent: true}` when more than `maxEdits` lines differ.
 * @param {string[]} a
 * @param {string[]} b
 * @returns {{ lines: { op: ' ' | '-' | '+', text: string }[], tooDifferent?: false } | { tooDifferent: true, lines?: undefined }}
 */
export function lineDiff(a, b, maxEdits = MAX_EDITS) {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf])
    suf++;
  const A = a.slice(pre, a.length - suf);
  const B = b.slice(pre, b.length - suf);
  const middle = myers(A, B, maxEdits);
  if (!middle) return { tooDifferent: true };
  return {
    lines: [
      ...a.slice(0, pre).map((text) => ({ op: ' ', text })),
      ...middle,
      ...a.slice(a.length - suf).map((text) => ({ op: ' ', text })),
    ],
  };
}

function myers(a, b, maxEdits) {
  const n = a.length;
  const m = b.length;
  if (n === 0) return b.map((text) => ({ op: '+', text }));
  if (m === 0) return a.map((text) => ({ op: '-', text }));
  const max = Math.min(n + m, maxEdits);
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  // frontiers[d] holds the furthest x on diagonals -d..d after d edits (memory O(D²))
  const frontiers = [];
  for (let d = 0; d <= max; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[off + k - 1] < v[off + k + 1]) ? v[off + k + 1] : v[off + k - 1] + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) return backtrack(a, b, frontiers, d);
    }
    frontiers.push(v.slice(off - d, off + d + 1));
  }
  return undefined;
}

/** Walks back from (n, m) to (0, 0) through the frontiers of each number of edits. */
function backtrack(a, b, frontiers, dEnd) {
  const out = [];
  let x = a.length;
  let y = b.length;
  for (let d = dEnd; d > 0; d--) {
    const prev = frontiers[d - 1];
    const at = (k) => prev[k + d - 1];
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      out.push({ op: ' ', text: a[--x] });
      y--;
    }
    if (x === prevX) out.push({ op: '+', text: b[--y] });
    else out.push({ op: '-', text: a[--x] });
  }
  while (x > 0 && y > 0) {
    out.push({ op: ' ', text: a[--x] });
    y--;
  }
  return out.reverse();
}

/**
 * A stable text form of a JSON value for diffing: keys sorted, two-space indentation, one
 * value per line (so a changed field is one changed line).
 */
export function jsonLines(value) {
  return JSON.stringify(sortKeys(value), null, 2).split('\n');
}

function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const o = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys(v[k]);
    return o;
  }
  return v;
}
