// What the client verbs of mesonctl (submit, get, logs, stop, restart, backfill) need from a
// Meson server, behind one small interface: HttpClient talks to the REST API of `mesonctl
// server`; a Kubernetes implementation (the operator's CRDs through KUBECONFIG) can implement the
// same interface later without touching the verbs.
import type { Workflow, WorkflowRun } from '../crds/index.ts';

export type RunObject = WorkflowRun & {
  metadata: { name: string; namespace: string; resourceVersion?: string; creationTimestamp?: string };
};

export interface RunListQuery {
  workflow?: string;
  phase?: string;
  initiator?: string;
  labelSelector?: string;
  createdAfter?: string;
  createdBefore?: string;
  limit?: number;
  continue?: string;
}

export type RunEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: RunObject }
  | { type: 'ADDED' | 'MODIFIED'; step: Record<string, unknown> };

/** A restart: from failed (default), the beginning, or a step; on the run's version, another, or the active one. */
export interface RestartRequest {
  from?: 'failed' | 'beginning' | 'step';
  step?: string;
  version?: number | 'active';
  parameters?: Record<string, unknown>;
}

export interface MesonClient {
  /** Where the client talks to (for messages). */
  readonly where: string;
  /** Where a step's full log can be read (printed under a failed step's stderr tail). */
  logLocation(ns: string, run: string, step: string): string;
  /** Creates or replaces a Workflow (a new version when its spec changed). */
  applyWorkflow(ns: string, wf: Workflow): Promise<{ created: boolean; object: Workflow }>;
  patchWorkflowSpec(ns: string, name: string, patch: Record<string, unknown>): Promise<Workflow>;
  startRun(
    ns: string,
    workflow: string,
    req: { parameters?: Record<string, unknown>; version?: number; labels?: Record<string, string> },
  ): Promise<RunObject>;
  listRuns(ns: string, q: RunListQuery): Promise<{ items: RunObject[]; continue?: string }>;
  /** The run with its step instances (status.steps). */
  getRun(ns: string, name: string): Promise<RunObject>;
  /** A step's log; with follow, the chunks as they are written, until the attempt ends. */
  logs(
    ns: string,
    run: string,
    step: string,
    opts: { stream?: 'stdout' | 'stderr' | 'all'; follow?: boolean; attempt?: number },
  ): AsyncIterable<string>;
  /** The run's (and its steps') changes until it ends. */
  watchRun(ns: string, run: string): AsyncIterable<RunEvent>;
  stopRun(ns: string, run: string): Promise<RunObject>;
  restartRun(ns: string, run: string, req: RestartRequest): Promise<RunObject>;
  backfill(
    ns: string,
    workflow: string,
    req: Record<string, unknown>,
  ): Promise<{ backfill: string; runs: string[] }>;
}

/** A failed request, with the server's stable code (API_NOT_FOUND...) when it gave one. */
export class ClientError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ClientError';
    this.code = code;
    this.status = status;
  }
}

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';

/** The REST API of a standalone server (docs/rest-api.md). */
export class HttpClient implements MesonClient {
  readonly where: string;
  private readonly base: string;
  private readonly token: string | undefined;
  private readonly fetchFn: typeof fetch;
  constructor(server: string, token?: string, fetchFn: typeof fetch = fetch) {
    let url: URL;
    try {
      url = new URL(server);
    } catch (err) {
      throw new ClientError('CLI_BAD_SERVER', 0, `--server: not a URL: ${JSON.stringify(server)}`, {
        cause: err,
      });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ClientError(
        'CLI_BAD_SERVER',
        0,
        `--server: expected an http(s) URL, got ${JSON.stringify(server)}`,
      );
    }
    this.base = url.href.replace(/\/+$/, '');
    this.where = this.base;
    this.token = token;
    this.fetchFn = fetchFn;
  }

  private async request(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Response> {
    let res: Response;
    try {
      res = await this.fetchFn(`${this.base}${path}`, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      const why = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ClientError(
        'CLI_UNREACHABLE',
        0,
        `cannot reach ${this.base} (${why}): is \`mesonctl server\` running? (--server, MESON_SERVER)`,
        {
          cause: err,
        },
      );
    }
    if (res.ok) return res;
    const text = await res.text();
    let problem: { code?: string; detail?: string } = {};
    try {
      problem = JSON.parse(text);
    } catch {
      // not problem+json
    }
    const hint = res.status === 401 ? ' (set MESON_API_TOKEN)' : '';
    throw new ClientError(
      problem.code ?? `HTTP_${res.status}`,
      res.status,
      `${problem.detail ?? (text.slice(0, 500) || res.statusText)}${hint}`,
    );
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.request(method, path, body)).json()) as T;
  }

  private ns(ns: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(ns)}`;
  }

  async applyWorkflow(ns: string, wf: Workflow): Promise<{ created: boolean; object: Workflow }> {
    const name = encodeURIComponent(wf.metadata.name ?? '');
    const res = await this.request('PUT', `${this.ns(ns)}/workflows/${name}`, wf);
    return { created: res.status === 201, object: (await res.json()) as Workflow };
  }

  async patchWorkflowSpec(ns: string, name: string, patch: Record<string, unknown>): Promise<Workflow> {
    const path = `${this.ns(ns)}/workflows/${encodeURIComponent(name)}`;
    const cur = await this.json<Workflow>('GET', path);
    return this.json<Workflow>('PUT', path, { ...cur, spec: { ...cur.spec, ...patch } });
  }

  startRun(
    ns: string,
    workflow: string,
    req: { parameters?: Record<string, unknown>; version?: number; labels?: Record<string, string> },
  ): Promise<RunObject> {
    return this.json('POST', `${this.ns(ns)}/workflows/${encodeURIComponent(workflow)}/runs`, req);
  }

  listRuns(ns: string, q: RunListQuery): Promise<{ items: RunObject[]; continue?: string }> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return this.json('GET', `${this.ns(ns)}/runs${qs ? `?${qs}` : ''}`);
  }

  getRun(ns: string, name: string): Promise<RunObject> {
    return this.json('GET', `${this.ns(ns)}/runs/${encodeURIComponent(name)}`);
  }

  async *logs(
    ns: string,
    run: string,
    step: string,
    opts: { stream?: 'stdout' | 'stderr' | 'all'; follow?: boolean; attempt?: number },
  ): AsyncIterable<string> {
    const params = new URLSearchParams();
    if (opts.stream) params.set('stream', opts.stream);
    if (opts.follow) params.set('follow', 'true');
    if (opts.attempt !== undefined) params.set('attempt', String(opts.attempt));
    const qs = params.toString();
    const res = await this.request(
      'GET',
      `${this.ns(ns)}/runs/${encodeURIComponent(run)}/steps/${encodeURIComponent(step)}/logs${qs ? `?${qs}` : ''}`,
    );
    const decoder = new TextDecoder();
    for await (const chunk of res.body ?? []) yield decoder.decode(chunk as Uint8Array, { stream: true });
    const rest = decoder.decode();
    if (rest) yield rest;
  }

  async *watchRun(ns: string, run: string): AsyncIterable<RunEvent> {
    const res = await this.request('GET', `${this.ns(ns)}/runs/${encodeURIComponent(run)}/events`);
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body ?? []) {
      buf += decoder.decode(chunk as Uint8Array, { stream: true });
      let end = buf.indexOf('\n\n');
      while (end >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        if (data) yield JSON.parse(data) as RunEvent;
        end = buf.indexOf('\n\n');
      }
    }
  }

  stopRun(ns: string, run: string): Promise<RunObject> {
    return this.json('POST', `${this.ns(ns)}/runs/${encodeURIComponent(run)}/stop`);
  }

  logLocation(ns: string, run: string, step: string): string {
    return `${this.base}${this.ns(ns)}/runs/${encodeURIComponent(run)}/steps/${encodeURIComponent(step)}/logs?stream=all`;
  }

  restartRun(ns: string, run: string, req: RestartRequest): Promise<RunObject> {
    return this.json('POST', `${this.ns(ns)}/runs/${encodeURIComponent(run)}/restart`, req);
  }

  backfill(
    ns: string,
    workflow: string,
    req: Record<string, unknown>,
  ): Promise<{ backfill: string; runs: string[] }> {
    return this.json('POST', `${this.ns(ns)}/workflows/${encodeURIComponent(workflow)}/backfill`, req);
  }
}
