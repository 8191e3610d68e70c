// The REST API of operator mode (src/api/operator.ts) on the real control plane: the same
// routes over the KubernetesStore, the custom resources being the state. History paging comes
// from the informer cache, watches from the store's watch (other writers included), writes are
// the store's commits (409 on a stale resourceVersion, as the standalone server answers).
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildOperatorApi } from '../../src/api/operator.ts';
import type { PodLogApi } from '../../src/api/pod-logs.ts';
import { KubernetesStore } from '../../src/store/kubernetes.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import { installCrdsServed, VALID_WORKFLOW } from './helpers.ts';

const ns = useNamespace('api');
const open: { app: FastifyInstance; store: KubernetesStore }[] = [];

beforeAll(async () => {
  await installCrdsServed();
});

afterEach(async () => {
  for (const { app, store } of open.splice(0)) {
    await app.close();
    await store.close();
  }
});

/** No step Pods in these tests: logs answer as for a deleted Pod. */
const noPods: PodLogApi = {
  listPods: async () => [],
  log: async () => {
    throw Object.assign(new Error('no pod'), { code: 404 });
  },
};

async function api(token?: string) {
  const store = await KubernetesStore.open({
    kubeConfig: ns.kc,
    namespaces: [ns.name],
    stateNamespace: ns.name,
    backoff: { initialMs: 50, maxMs: 1000 },
  });
  const app = await buildOperatorApi({
    store,
    kubeConfig: ns.kc,
    podLogApi: noPods,
    ...(token ? { token } : {}),
  });
  open.push({ app, store });
  return { app, store, base: `/api/v1/namespaces/${ns.name}` };
}

interface WatchEvent {
  type: string;
  object: { metadata: { name?: string; resourceVersion?: string }; status?: { phase?: string } };
}

/** A server-sent event stream read with fetch: `next` waits for an event that `want`s. */
async function sse(url: string) {
  const abort = new AbortController();
  const res = await fetch(url, { signal: abort.signal });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/event-stream');
  const reader = res.body!.getReader();
  const events: WatchEvent[] = [];
  let text = '';
  return {
    async next(want: (e: WatchEvent) => boolean): Promise<WatchEvent> {
      for (;;) {
        const found = events.find(want);
        if (found) return found;
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended; events: ${JSON.stringify(events)}`);
        text += Buffer.from(value).toString('utf8');
        for (let cut = text.indexOf('\n\n'); cut >= 0; cut = text.indexOf('\n\n')) {
          const data = text
            .slice(0, cut)
            .split('\n')
            .find((l) => l.startsWith('data: '));
          if (data) events.push(JSON.parse(data.slice('data: '.length)) as WatchEvent);
          text = text.slice(cut + 2);
        }
      }
    },
    async close() {
      abort.abort();
      await reader.cancel().catch(() => {});
    },
  };
}

/** One field of an object as kubectl reads it from the API server. */
async function field(resource: string, path: string): Promise<string> {
  return (await kubectlAsync(['get', resource, '-n', ns.name, '-o', `jsonpath={${path}}`])).stdout;
}

/** PUTs the hello Workflow as YAML (201: created). */
async function putHello(app: FastifyInstance, base: string) {
  const put = await app.inject({
    method: 'PUT',
    url: `${base}/workflows/hello`,
    payload: VALID_WORKFLOW(ns.name),
    headers: { 'content-type': 'application/yaml' },
  });
  expect(put.statusCode, put.body).toBe(201);
  return put;
}

const json = (body: unknown) => ({
  payload: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

describe('REST API over the Kubernetes store', () => {
  it('serves workflows, runs newest first with paging and filters, stop, and the same errors', async () => {
    const { app, base } = await api();
    // a Workflow as YAML, versioned before the answer: a run can start at once
    const put = await putHello(app, base);
    expect(put.json().status).toMatchObject({ conditions: [{ type: 'Ready', status: 'True' }] });
    const versions = await kubectlAsync(['get', 'workflowversions.meson.dev', '-n', ns.name, '-o', 'name']);
    expect(versions.stdout.trim()).toBe('workflowversion.meson.dev/hello-v1');

    // three runs in three seconds (Kubernetes stamps creation in whole seconds)
    const names: string[] = [];
    for (const [i, initiator] of ['api', 'manual', 'api'].entries()) {
      if (i > 0) await sleep(1100);
      const r = await app.inject({
        method: 'POST',
        url: `${base}/workflows/hello/runs`,
        ...json({
          parameters: { who: `n${i}` },
          initiator: { type: initiator },
          labels: { batch: `b${i % 2}` },
        }),
      });
      expect(r.statusCode, r.body).toBe(201);
      names.push(r.json().metadata.name);
    }
    const [first, second, third] = names;
    // a run the API never wrote (kubectl): in the history all the same
    const other = await kubectlAsync(
      ['create', '-f', '-'],
      JSON.stringify({
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name: 'by-kubectl', namespace: ns.name },
        spec: { workflow: 'other' },
      }),
    );
    expect(other.status, other.stderr).toBe(0);
    const list = async (query: string) => {
      const r = await app.inject({ method: 'GET', url: `${base}/runs${query}` });
      expect(r.statusCode, r.body).toBe(200);
      return r.json() as { items: { metadata: { name: string } }[]; continue?: string };
    };
    await waitFor('the kubectl run in the cache', async () =>
      (await list('')).items.some((r) => r.metadata.name === 'by-kubectl') ? true : undefined,
    );
    const byName = (p: { items: { metadata: { name: string } }[] }) => p.items.map((r) => r.metadata.name);
    expect(byName(await list('?workflow=hello'))).toEqual([third, second, first]);
    const p1 = await list('?workflow=hello&limit=2');
    expect(byName(p1)).toEqual([third, second]);
    const p2 = await list(`?workflow=hello&limit=2&continue=${encodeURIComponent(p1.continue!)}`);
    expect(byName(p2)).toEqual([first]);
    expect(p2.continue).toBeUndefined();
    expect(byName(await list('?initiator=manual'))).toEqual([second]);
    expect(byName(await list('?labelSelector=batch%3Db0'))).toEqual([third, first]);
    expect(byName(await list('?phase=Pending&workflow=other'))).toEqual(['by-kubectl']);
    expect(byName(await list('?version=1'))).toEqual([]); // spec.version unset, no status yet

    // one run, with its (empty) step instances
    const got = await app.inject({ method: 'GET', url: `${base}/runs/${first}` });
    expect(got.statusCode).toBe(200);
    expect(got.json()).toMatchObject({ metadata: { name: first }, status: { steps: [] } });

    // stop: spec.stop, as kubectl sees it
    const stop = await app.inject({ method: 'POST', url: `${base}/runs/${first}/stop` });
    expect(stop.statusCode, stop.body).toBe(202);
    expect(await field(`workflowruns.meson.dev/${first}`, '.spec.stop')).toBe('true');

    // a stale resourceVersion: 409 in the API's problem shape
    const wf = (await app.inject({ method: 'GET', url: `${base}/workflows/hello` })).json();
    const edit = { ...wf, spec: { ...wf.spec, description: 'first edit' } };
    delete edit.status;
    const ok = await app.inject({ method: 'PUT', url: `${base}/workflows/hello`, ...json(edit) });
    expect(ok.statusCode, ok.body).toBe(200);
    const stale = await app.inject({
      method: 'PUT',
      url: `${base}/workflows/hello`,
      ...json({ ...edit, spec: { ...edit.spec, description: 'lost update' } }),
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.headers['content-type']).toContain('application/problem+json');
    expect(stale.json()).toMatchObject({ status: 409, code: 'API_CONFLICT', title: 'Conflict' });
    expect(await field('workflows.meson.dev/hello', '.spec.description')).toBe('first edit');
    // the edit made version 2 (the controller's job, done by the API so a run can start now)
    const wf2 = (await app.inject({ method: 'GET', url: `${base}/workflows/hello` })).json();
    expect(wf2.status).toMatchObject({ latestVersion: 2, activeVersion: 2 });

    // unknown and repeated query parameters, bad names, a missing run: as in standalone mode
    const unknown = await app.inject({ method: 'GET', url: `${base}/runs?sort=name` });
    expect(unknown.statusCode).toBe(400);
    expect(unknown.json().issues[0]).toMatchObject({ path: 'query.sort', code: 'QUERY_UNKNOWN' });
    const twice = await app.inject({ method: 'GET', url: `${base}/runs?limit=1&limit=2` });
    expect(twice.json().issues[0]).toMatchObject({ code: 'QUERY_REPEATED' });
    const badName = await app.inject({ method: 'GET', url: `/api/v1/namespaces/${ns.name}/runs/..%2Fx` });
    expect(badName.statusCode).toBe(400);
    const missing = await app.inject({ method: 'GET', url: `${base}/runs/nope` });
    expect(missing.json()).toMatchObject({ status: 404, code: 'API_NOT_FOUND' });
    // a bad continue token is the client's error, not the server's
    const forged = await app.inject({ method: 'GET', url: `${base}/runs?continue=bm9wZQ` });
    expect(forged.statusCode).toBe(400);
    // delete through the API: gone for kubectl too
    const del = await app.inject({ method: 'DELETE', url: `${base}/runs/by-kubectl` });
    expect(del.statusCode).toBe(204);
    const gone = await kubectlAsync(['get', 'workflowruns.meson.dev/by-kubectl', '-n', ns.name]);
    expect(gone.stderr).toContain('NotFound');
  });

  it("answers an artifact's consumers (lineage) from the informer cache, paged", async () => {
    const { app, base } = await api();
    const create = async (obj: unknown) => {
      const r = await kubectlAsync(['create', '-f', '-'], JSON.stringify(obj));
      expect(r.status, r.stderr).toBe(0);
    };
    const wf = (name: string, spec: Record<string, unknown>) => ({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name, namespace: ns.name },
      spec: { definition: { step: { name: 'x', noop: {} } }, ...spec },
    });
    await create(wf('by-trigger', { triggers: { artifacts: [{ name: 'views' }] } }));
    await create(
      wf('by-input', {
        definition: {
          step: { name: 'wait', noop: {}, inputs: [{ name: 'views', partition: { day: '${day}' } }] },
        },
      }),
    );
    const announced = await app.inject({
      method: 'POST',
      url: `${base}/artifacts`,
      ...json({ name: 'views', partition: { day: '1' } }),
    });
    expect(announced.statusCode, announced.body).toBe(201);
    const artifact = announced.json().metadata.name as string;
    // runs an artifact trigger started (kubectl here: no admission webhook in this test)
    // (the other first: once fired-1 is in the cache, so is it, as the watch delivers in order)
    for (const [name, day] of [
      ['fired-other', '2'],
      ['fired-1', '1'],
    ] as const)
      await create({
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name, namespace: ns.name },
        spec: {
          workflow: 'by-trigger',
          initiator: { type: 'artifact', artifacts: [{ name: 'views', partition: { day } }] },
        },
      });
    const consumers = async (query = '') => {
      const r = await app.inject({ method: 'GET', url: `${base}/artifacts/${artifact}/consumers${query}` });
      expect(r.statusCode, r.body).toBe(200);
      return r.json() as { workflows?: unknown[]; runs: { name: string }[]; continue?: string };
    };
    const body = await waitFor('the runs in the cache', async () => {
      const b = await consumers();
      return b.runs.length === 1 ? b : undefined;
    });
    expect(body.workflows).toEqual([
      { workflow: 'by-input', via: 'input', step: 'wait', partition: { day: '${day}' } },
      { workflow: 'by-trigger', via: 'trigger' },
    ]);
    expect(body.runs).toMatchObject([{ name: 'fired-1', workflow: 'by-trigger' }]);
    // one run read per page: the matching run is on one of the pages, and only there
    const seen: string[] = [];
    let cont: string | undefined;
    for (let i = 0; i < 5; i++) {
      const page = await consumers(`?limit=1${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`);
      seen.push(...page.runs.map((r) => r.name));
      cont = page.continue;
      if (!cont) break;
    }
    expect(seen).toEqual(['fired-1']);
    expect((await app.inject({ method: 'GET', url: `${base}/artifacts/missing/consumers` })).statusCode).toBe(
      404,
    );
  });

  it('streams a status change made by another client to a run watch', async () => {
    const { app, base } = await api();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    await putHello(app, base);
    const run = await app.inject({ method: 'POST', url: `${base}/workflows/hello/runs`, ...json({}) });
    const name = run.json().metadata.name as string;

    const url = (q: string) => `http://127.0.0.1:${port}${base}/runs?watch=true&workflow=hello${q}`;
    const watch = await sse(url(''));
    const bookmark = await watch.next((e) => e.type === 'BOOKMARK');
    const rv = bookmark.object.metadata.resourceVersion!;
    expect(Number(rv)).toBeGreaterThan(0);
    // another client (kubectl) writes the run's status: the watch sees it
    const patch = await kubectlAsync([
      'patch',
      `workflowruns.meson.dev/${name}`,
      '-n',
      ns.name,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { phase: 'Running' } }),
    ]);
    expect(patch.status, patch.stderr).toBe(0);
    const changed = await watch.next((e) => e.type === 'MODIFIED' && e.object.status?.phase === 'Running');
    expect(changed.object.metadata.name).toBe(name);
    await watch.close();
    // a client that went away resumes from its bookmark: what was written since is replayed
    const resumed = await sse(url(`&resourceVersion=${rv}`));
    const replayed = await resumed.next((e) => e.type === 'MODIFIED');
    expect(replayed.object).toMatchObject({ metadata: { name }, status: { phase: 'Running' } });
    await resumed.close();
  });

  it('keeps the security guarantees: the token on the matched route, names, bodies, hosts', async () => {
    const { app, base } = await api('s3cret');
    const auth = { authorization: 'Bearer s3cret' };
    for (const url of [
      `${base}/runs`,
      `/%61pi/v1/namespaces/${ns.name}/runs`,
      '/api/v1/nope',
      `/${base}/runs`,
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(401);
    }
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: `${base}/runs`, headers: auth })).statusCode).toBe(200);
    // names are checked before the store is asked (nothing reaches the API server)
    for (const url of [
      `${base}/runs/UPPER`,
      `/api/v1/namespaces/..%2Fkube-system/runs`,
      `${base}/runs/a%2Fb`,
    ]) {
      const res = await app.inject({ method: 'GET', url, headers: auth });
      expect(res.statusCode, url).toBe(400);
    }
    // a cross-site write and a foreign Host are refused before any route
    const csrf = await app.inject({
      method: 'POST',
      url: `${base}/workflows/hello/runs`,
      headers: { ...auth, origin: 'https://evil.example', 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(csrf.statusCode).toBe(403);
    const rebinding = await app.inject({
      method: 'GET',
      url: `${base}/runs`,
      headers: { ...auth, host: 'evil.example' },
    });
    expect(rebinding.statusCode).toBe(403);
    // a body over the limit: 413, nothing written
    const big = await app.inject({
      method: 'PUT',
      url: `${base}/workflows/big`,
      headers: { ...auth, 'content-type': 'application/json' },
      payload: JSON.stringify({ spec: { description: 'x'.repeat(2 * 1024 * 1024) } }),
    });
    expect(big.statusCode).toBe(413);
    expect((await kubectlAsync(['get', 'workflows.meson.dev', '-n', ns.name, '-o', 'name'])).stdout).toBe('');
  });
});
