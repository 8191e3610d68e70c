// The UI's only way to the server: the public REST API under /api/v1, with the token (if the
// server has one) as an Authorization header. The token lives in sessionStorage (gone when the tab
// closes), never in a URL, a cookie or localStorage.

import { sseParser } from './sse.js';

const TOKEN_KEY = 'meson.token';
export const NS = 'default';

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An API error with the server's problem+json fields (code, detail). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code;
  }
}

let onUnauthorized = () => {};
/** Called on any 401 (the login form shows). */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

function headers(accept, body) {
  const h = { accept };
  const token = getToken();
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h['content-type'] = 'application/json';
  return h;
}

/** The response, or an ApiError with the server's problem (a 401 also shows the login form). */
async function checked(res) {
  if (res.status === 401) onUnauthorized();
  if (res.ok) return res;
  let problem;
  try {
    problem = await res.json();
  } catch {
    problem = undefined;
  }
  throw new ApiError(res.status, problem);
}

/**
 * @param {string} path under /api/v1, e.g. `/namespaces/default/runs`
 * @param {{ method?: string, body?: unknown, text?: boolean, signal?: AbortSignal }} [opts]
 */
export async function api(path, opts = {}) {
  const res = await checked(
    await fetch(`/api/v1${path}`, {
      method: opts.method ?? 'GET',
      headers: headers(opts.text ? 'text/plain' : 'application/json', opts.body),
      credentials: 'omit',
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    }),
  );
  if (res.status === 204) return undefined;
  return opts.text ? res.text() : res.json();
}

/**
 * A streaming GET (a followed log, an event stream): `onText` gets the text as it arrives.
 * Resolves when the server ends the answer; rejects on an HTTP error (ApiError) or when the
 * connection breaks. fetch, not EventSource: EventSource cannot send the token's header.
 * @param {string} path
 * @param {(text: string) => void} onText
 * @param {AbortSignal} signal
 */
export async function streamText(path, onText, signal) {
  const res = await checked(
    await fetch(`/api/v1${path}`, {
      headers: headers(path.includes('/logs') ? 'text/plain' : 'text/event-stream'),
      credentials: 'omit',
      cache: 'no-store',
      signal,
    }),
  );
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    onText(value);
  }
}

/** Delay before the next try after `failures` failed connections (1 s doubling, at most 30 s). */
export function backoffMs(failures) {
  return Math.min(30_000, 1000 * 2 ** Math.max(0, failures - 1));
}

/**
 * Follows a watch endpoint (server-sent events): calls `onEvent` with each event's JSON. When
 * the stream ends or breaks before `done()` holds, it reconnects with `resourceVersion` set to
 * the id of the last event, so nothing is missed; after a failure it first calls `resync()`
 * (one plain GET, so the page stays current while the stream is down) and waits longer after
 * each failure in a row. A 4xx answer other than 429 stops it (`onError`). While the tab is
 * hidden the stream is closed (it holds a server slot and one of the browser's connections);
 * it resumes from the last event when the tab is shown again. Returns a function that closes it.
 * @param {string} path
 * @param {{ onEvent: (e: any) => void, resourceVersion?: string, done?: () => boolean,
 *   resync?: () => Promise<unknown>, onError?: (err: Error) => void, onLive?: (live: boolean) => void }} opts
 */
export function watch(path, opts) {
  let rv = opts.resourceVersion;
  let failures = 0;
  let timer;
  let stopped = false;
  let ctl;
  // each connection has a generation: a later one (or a pause) makes an earlier one stale
  let generation = 0;
  const doc = globalThis.document;
  const connect = async () => {
    const mine = ++generation;
    const stale = () => stopped || mine !== generation;
    if (stopped || doc?.hidden) return;
    ctl = new AbortController();
    let got = 0;
    const parser = sseParser((e) => {
      got++;
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (e.id) rv = e.id;
      failures = 0;
      opts.onEvent(msg);
    });
    const url = rv
      ? `${path}${path.includes('?') ? '&' : '?'}resourceVersion=${encodeURIComponent(rv)}`
      : path;
    try {
      opts.onLive?.(true);
      await streamText(url, (t) => parser.push(t), ctl.signal);
      if (stale() || opts.done?.()) return;
      // an answer that ended without a single event: catch up with a plain GET, then wait
      if (got === 0) throw new Error('the stream ended without an event');
    } catch (err) {
      if (stale()) return;
      opts.onLive?.(false);
      if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
        opts.onError?.(err);
        return;
      }
      failures++;
      try {
        await opts.resync?.();
      } catch {
        // the next try says more
      }
      if (stale() || opts.done?.()) return;
    }
    timer = setTimeout(connect, failures ? backoffMs(failures) : 0);
  };
  const onVisibility = () => {
    clearTimeout(timer);
    if (doc.hidden) {
      generation++;
      ctl?.abort();
      opts.onLive?.(false);
    } else if (!stopped && !opts.done?.()) connect();
  };
  doc?.addEventListener('visibilitychange', onVisibility);
  connect();
  return () => {
    stopped = true;
    clearTimeout(timer);
    ctl?.abort();
    doc?.removeEventListener('visibilitychange', onVisibility);
  };
}

/** Path segment, encoded (names are checked by the server; this keeps a URL a URL). */
export const seg = (s) => encodeURIComponent(String(s));

export const FINISHED = new Set(['Succeeded', 'Failed', 'Stopped']);
