// The UI's only way to the server: the public REST API under /api/v1, with the token (if the
// server has one) as an Authorization header. The token lives in sessionStorage (gone when the tab
// closes), never in a URL, a cookie or localStorage.

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

/**
 * @param {string} path under /api/v1, e.g. `/namespaces/default/runs`
 * @param {{ method?: string, body?: unknown, text?: boolean, signal?: AbortSignal }} [opts]
 */
export async function api(path, opts = {}) {
  const headers = { accept: opts.text ? 'text/plain' : 'application/json' };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/api/v1${path}`, {
    method: opts.method ?? 'GET',
    headers,
    credentials: 'omit',
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (res.status === 401) onUnauthorized();
  if (!res.ok) {
    let problem;
    try {
      problem = await res.json();
    } catch {
      problem = undefined;
    }
    throw new ApiError(res.status, problem);
  }
  if (res.status === 204) return undefined;
  return opts.text ? res.text() : res.json();
}

/** Path segment, encoded (names are checked by the server; this keeps a URL a URL). */
export const seg = (s) => encodeURIComponent(String(s));

/** How often a live view asks again while nothing pushes changes (ms). */
export const POLL_MS = 2000;

/**
 * Follows a resource: calls `onValue` with each new value until `done(value)` holds or the
 * returned function is called. One source of updates for every live view, so that a server push
 * (watch or server-sent events) can replace the polling here without touching the views.
 * @param {() => Promise<unknown>} load
 * @param {(value: any) => void} onValue
 * @param {{ done?: (value: any) => boolean, onError?: (err: Error) => void, interval?: number }} [opts]
 */
export function follow(load, onValue, opts = {}) {
  let stopped = false;
  let timer;
  const tick = async () => {
    if (stopped) return;
    try {
      const value = await load();
      if (stopped) return;
      onValue(value);
      if (opts.done?.(value)) return;
    } catch (err) {
      if (stopped) return;
      opts.onError?.(err);
    }
    // a hidden tab does not poll; it catches up when shown again
    timer = setTimeout(tick, document.hidden ? (opts.interval ?? POLL_MS * 5) : (opts.interval ?? POLL_MS));
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

export const FINISHED = new Set(['Succeeded', 'Failed', 'Stopped']);
