// The UI's stream client against a fake fetch: resume from the last event id, a plain read and
// a growing wait after a failure, a stop on a client error, and nothing left running after stop.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffMs, watch } from './api.js';

type Answer = { status: number; body?: string; problem?: unknown };

/** A fetch that answers from `answers` in order and records each URL and header. */
function fakeFetch(answers: Answer[]) {
  const calls: { url: string; auth: string | undefined; signal: AbortSignal | undefined }[] = [];
  const fn = vi.fn(async (url: string, init: { headers: Record<string, string>; signal?: AbortSignal }) => {
    calls.push({ url, auth: init.headers.authorization, signal: init.signal });
    const a = answers.shift();
    if (!a) return new Promise<Response>(() => {}); // the last stream stays open
    if (a.status !== 200)
      return new Response(JSON.stringify(a.problem ?? { detail: `HTTP ${a.status}` }), { status: a.status });
    return new Response(a.body ?? '', { status: 200, headers: { 'content-type': 'text/event-stream' } });
  });
  vi.stubGlobal('fetch', fn);
  return calls;
}

const ev = (id: number, data: unknown) => `id: ${id}\ndata: ${JSON.stringify(data)}\n\n`;

beforeEach(() => {
  const store = new Map<string, string>([['meson.token', 'tok']]);
  vi.stubGlobal('sessionStorage', {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => store.set(k, v),
    removeItem: (k: string) => store.delete(k),
  });
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe('watch', () => {
  it('reconnects where the last stream ended, with resourceVersion = the last event id, until done', async () => {
    const calls = fakeFetch([
      { status: 200, body: `: heartbeat\n\n${ev(5, { n: 1 })}${ev(7, { n: 2 })}` },
      { status: 200, body: ev(9, { n: 3, end: true }) },
    ]);
    const seen: unknown[] = [];
    let done = false;
    const stop = watch('/namespaces/default/runs/r/events', {
      resourceVersion: '3',
      onEvent: (e) => {
        seen.push(e);
        if (e.end) done = true;
      },
      done: () => done,
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(seen).toEqual([{ n: 1 }, { n: 2 }, { n: 3, end: true }]);
    expect(calls.map((c) => c.url)).toEqual([
      '/api/v1/namespaces/default/runs/r/events?resourceVersion=3',
      '/api/v1/namespaces/default/runs/r/events?resourceVersion=7',
    ]);
    // the token travels as a header, never in the URL
    expect(calls.every((c) => c.auth === 'Bearer tok' && !c.url.includes('tok'))).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toHaveLength(2);
    stop();
  });

  it('after a refusal (429) or a break, reads once and waits longer each time before trying again', async () => {
    const calls = fakeFetch([
      { status: 429 },
      { status: 503 },
      { status: 200, body: '' },
      { status: 200, body: ev(4, {}) },
    ]);
    const resync = vi.fn(async () => {});
    const live: boolean[] = [];
    const stop = watch('/namespaces/default/runs?watch=true', {
      onEvent: () => {},
      resync,
      onLive: (l) => live.push(l),
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(1);
    expect(resync).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(backoffMs(1));
    expect(calls).toHaveLength(2);
    expect(resync).toHaveBeenCalledTimes(2);
    // the second wait is twice the first
    await vi.advanceTimersByTimeAsync(backoffMs(1));
    expect(calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(backoffMs(2) - backoffMs(1));
    expect(calls).toHaveLength(3);
    // a stream that ended without an event counts as a failure too (no reconnect storm)
    expect(resync).toHaveBeenCalledTimes(3);
    await vi.advanceTimersByTimeAsync(backoffMs(3) - 100);
    expect(calls).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(200);
    // the fourth answered an event: the next connection resumes from it, at once
    expect(calls).toHaveLength(5);
    expect(calls[0]!.url).toBe('/api/v1/namespaces/default/runs?watch=true');
    expect(calls[4]!.url).toBe('/api/v1/namespaces/default/runs?watch=true&resourceVersion=4');
    expect(live).toContain(false);
    stop();
    expect(calls[4]!.signal?.aborted).toBe(true);
  });

  it('stops on a client error other than 429 and says why', async () => {
    const calls = fakeFetch([{ status: 404, problem: { detail: 'run "default/r" not found' } }]);
    const errors: Error[] = [];
    watch('/namespaces/default/runs/r/events', { onEvent: () => {}, onError: (e) => errors.push(e) });
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toHaveLength(1);
    expect(errors.map((e) => e.message)).toEqual(['run "default/r" not found']);
  });

  it('does not try again once stopped', async () => {
    const calls = fakeFetch([{ status: 503 }]);
    const stop = watch('/x', { onEvent: () => {} });
    await vi.advanceTimersByTimeAsync(10);
    stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toHaveLength(1);
  });
});

describe('watch in a hidden tab', () => {
  it('closes the stream while the tab is hidden and resumes from the last event when shown', async () => {
    const doc = Object.assign(new EventTarget(), { hidden: false });
    vi.stubGlobal('document', doc);
    const calls = fakeFetch([{ status: 200, body: ev(12, { n: 1 }) }]);
    const seen: unknown[] = [];
    const stop = watch('/w', { onEvent: (e) => seen.push(e) });
    await vi.advanceTimersByTimeAsync(10);
    // the first stream ended after its event; the second stays open
    expect(calls).toHaveLength(2);
    doc.hidden = true;
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(calls[1]!.signal?.aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toHaveLength(2);
    doc.hidden = false;
    doc.dispatchEvent(new Event('visibilitychange'));
    await vi.advanceTimersByTimeAsync(10);
    expect(calls.map((c) => c.url)).toEqual([
      '/api/v1/w',
      '/api/v1/w?resourceVersion=12',
      '/api/v1/w?resourceVersion=12',
    ]);
    expect(seen).toEqual([{ n: 1 }]);
    stop();
  });
});

describe('backoffMs', () => {
  it('doubles from 1 s up to 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(backoffMs)).toEqual([
      1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000,
    ]);
  });
});
