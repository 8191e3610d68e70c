import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { SqliteAsyncStore } from '../store/sqlite-async.ts';
import { buildApp } from './app.ts';
import { type PodLogApi, PodLogSource } from './pod-logs.ts';

const NS = '/api/v1/namespaces/default';

function pod(
  name: string,
  run: string,
  instance: string,
  attempt: number,
  created: string,
  extra: Partial<V1Pod> = {},
): V1Pod {
  return {
    metadata: {
      name,
      namespace: 'default',
      creationTimestamp: new Date(created),
      labels: { 'meson.dev/run': run.slice(0, 63), 'meson.dev/launch-id': `l-${name}` },
      annotations: {
        'meson.dev/run': run,
        'meson.dev/step-instance': instance,
        'meson.dev/attempt': String(attempt),
      },
    },
    ...extra,
  };
}

/** A pods/log API over fixed Pods; `logs` by Pod name (a missing entry: 404). */
function fakeApi(pods: () => V1Pod[], logs: Record<string, string[]>) {
  const calls: { pod: string; follow: boolean; limitBytes?: number }[] = [];
  const api: PodLogApi = {
    listPods: async (_ns, selector) =>
      pods().filter((p) => selector === `meson.dev/run=${p.metadata?.labels?.['meson.dev/run']}`),
    log: async (_ns, name, container, out: Writable, opts) => {
      calls.push({
        pod: name,
        follow: opts.follow,
        ...(opts.limitBytes ? { limitBytes: opts.limitBytes } : {}),
      });
      expect(container).toBe('step');
      const chunks = logs[name];
      if (!chunks) throw Object.assign(new Error('pods "x" not found'), { code: 404 });
      const abort = new AbortController();
      void (async () => {
        for (const c of chunks) {
          await new Promise((r) => setTimeout(r, 5));
          if (abort.signal.aborted) return;
          out.write(c);
        }
        out.end();
      })();
      return abort;
    },
  };
  return { api, calls };
}

async function setup(pods: () => V1Pod[], logs: Record<string, string[]>) {
  const store = new SqliteAsyncStore({ dir: ':memory:' });
  await store.transaction((w) =>
    w.create('WorkflowRun', {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name: 'r', namespace: 'default' },
      spec: { workflow: 'w' },
    }),
  );
  const setStep = (phase: string, attempts: number) =>
    store.transaction((w) =>
      w.putStepInstances([
        { namespace: 'default', run: 'r', id: 'a', phase, data: { id: 'a', phase, attempts } },
      ]),
    );
  await setStep('Running', 2);
  const fake = fakeApi(pods, logs);
  const logSource = new PodLogSource(store, fake.api, { pollMs: 10, maxBytes: 1234 });
  const app = await buildApp({ store, logs: logSource, streams: { pollMs: 10 } });
  return { app, store, setStep, ...fake };
}

describe('PodLogSource (operator mode: step logs from pods/log)', () => {
  const pods = [
    pod('r-a-a1', 'r', 'a', 1, '2026-01-01T00:00:00Z'),
    pod('r-a-a2-old', 'r', 'a', 2, '2026-01-01T00:01:00Z'),
    pod('r-a-a2-new', 'r', 'a', 2, '2026-01-01T00:02:00Z', {
      status: {
        phase: 'Failed',
        containerStatuses: [
          {
            name: 'step',
            image: 'x',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: {
              terminated: {
                exitCode: 3,
                message: 'boom',
                startedAt: new Date('2026-01-01T00:02:01Z'),
                finishedAt: new Date('2026-01-01T00:02:05Z'),
              },
            },
          },
        ],
      },
    }),
    // same run label, other step instance; and another run: never read for r/a
    pod('r-b-a2', 'r', 'b', 2, '2026-01-01T00:03:00Z'),
    pod('r2-a-a2', 'r2', 'a', 2, '2026-01-01T00:04:00Z'),
  ];
  const logs = {
    'r-a-a1': ['one\n'],
    'r-a-a2-new': ['two\n', 'err\n'],
    'r-b-a2': ['B\n'],
    'r2-a-a2': ['R2\n'],
  };

  it('reads the newest Pod of the attempt asked (default the latest), bounded, as one combined stream', async () => {
    const { app, calls } = await setup(() => pods, logs);
    const latest = await app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/logs?stream=stderr` });
    expect(latest.statusCode).toBe(200);
    expect(latest.body).toBe('two\nerr\n');
    expect(latest.headers['x-meson-log-streams']).toBe('combined');
    expect(calls.at(-1)).toEqual({ pod: 'r-a-a2-new', follow: false, limitBytes: 1234 });
    const first = await app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/logs?attempt=1` });
    expect(first.body).toBe('one\n');
    // an attempt without a Pod (deleted with its log): 404 saying so
    const none = await app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/logs?attempt=3` });
    expect(none.statusCode).toBe(404);
    expect(none.json().detail).toContain('deleted Pod');
  });

  it('lists the attempts from the Pods, with exit code and milestones', async () => {
    const { app } = await setup(() => pods, logs);
    const res = await app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/attempts` });
    expect(res.statusCode).toBe(200);
    expect(res.json().items).toEqual([
      {
        attempt: 1,
        launchId: 'l-r-a-a1',
        phase: 'Pending',
        milestones: { launched: Date.parse('2026-01-01T00:00:00Z') },
      },
      {
        attempt: 2,
        launchId: 'l-r-a-a2-old',
        phase: 'Pending',
        milestones: { launched: Date.parse('2026-01-01T00:01:00Z') },
      },
      {
        attempt: 2,
        launchId: 'l-r-a-a2-new',
        phase: 'Failed',
        milestones: {
          launched: Date.parse('2026-01-01T00:02:00Z'),
          running: Date.parse('2026-01-01T00:02:01Z'),
          finished: Date.parse('2026-01-01T00:02:05Z'),
        },
        exitCode: 3,
        message: 'boom',
      },
    ]);
  });

  it('follows: waits for the Pod, streams its log until the container ends', async () => {
    let visible: V1Pod[] = [];
    const { app, calls } = await setup(() => visible, { 'r-a-a2-new': ['x\n', 'y\n'] });
    const following = app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/logs?follow=true` });
    await new Promise((r) => setTimeout(r, 50));
    visible = pods; // the Pod appears after a few polls
    const res = await following;
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('x\ny\n');
    expect(calls).toEqual([{ pod: 'r-a-a2-new', follow: true }]);
  });

  it('ends a follow when the step ends without a Pod', async () => {
    const { app, setStep } = await setup(() => [], {});
    const following = app.inject({ method: 'GET', url: `${NS}/runs/r/steps/a/logs?follow=true` });
    await new Promise((r) => setTimeout(r, 30));
    await setStep('Failed', 2);
    const res = await following;
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('');
  });

  it('never lets a run name add requirements to the Pod selector (a hostile name is one label value)', async () => {
    const selectors: string[] = [];
    const api: PodLogApi = {
      listPods: async (_ns, selector) => {
        selectors.push(selector);
        return [];
      },
      log: async () => new AbortController(),
    };
    const source = new PodLogSource(new SqliteAsyncStore({ dir: ':memory:' }), api, { pollMs: 10 });
    for (const run of ['a,meson.dev/run', 'a=b', 'x!=y', `${'r'.repeat(80)},z`, 'a b', 'ü'])
      await source.read({ ns: 'default', run, step: 's', attempt: 1, streams: ['stdout'] });
    for (const sel of selectors) expect(sel).toMatch(/^meson\.dev\/run=[A-Za-z0-9_.-]{0,63}$/);
  });

  it('pauses the log request while a client reads slowly, instead of dropping the client', async () => {
    const chunk = 'x'.repeat(64 * 1024 - 1) + '\n';
    const chunks = 128; // 8 MiB, 32 times what a client may leave unread here
    const api: PodLogApi = {
      listPods: async () => [pods[2]!],
      log: async (_ns, _pod, _c, out: Writable) => {
        const abort = new AbortController();
        void (async () => {
          for (let i = 0; i < chunks && !abort.signal.aborted; i++)
            if (!out.write(chunk)) await once(out, 'drain'); // as pipe() does
          out.end();
        })();
        return abort;
      },
    };
    const store = new SqliteAsyncStore({ dir: ':memory:' });
    await store.transaction((w) => {
      w.create('WorkflowRun', {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name: 'r', namespace: 'default' },
        spec: { workflow: 'w' },
      });
    });
    await store.transaction((w) =>
      w.putStepInstances([
        {
          namespace: 'default',
          run: 'r',
          id: 'a',
          phase: 'Running',
          data: { id: 'a', phase: 'Running', attempts: 2 },
        },
      ]),
    );
    const app = await buildApp({
      store,
      logs: new PodLogSource(store, api, { pollMs: 10 }),
      streams: { maxBufferedBytes: 256 * 1024 },
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = app.server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}${NS}/runs/r/steps/a/logs?follow=true`);
      const reader = res.body!.getReader();
      await new Promise((r) => setTimeout(r, 300)); // the client reads nothing for a while
      let bytes = 0;
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        bytes += value.byteLength;
      }
      expect(bytes).toBe(chunk.length * chunks);
    } finally {
      await app.close();
    }
  });
});
