// The operator's store (src/store/kubernetes.ts) on the real test control plane: the shared
// store contract, then what only Kubernetes has (watch resume, 410 relist, shards under the
// size limits, batched shard writes, owner references).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { Informer } from '../../src/store/informer.ts';
import { countingKubeApi, kubeApi } from '../../src/store/kube-api.ts';
import { KubernetesStore, RUN_LABEL, SHARD_RESOURCE } from '../../src/store/kubernetes.ts';
import type { StepInstanceRecord } from '../../src/store/types.ts';
import { installCrds } from '../cluster/crds.ts';
import { kubectl } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import { storeContract } from '../store-contract/contract.ts';

const ns = useNamespace('store');
const custom = ns.kc.makeApiClient(CustomObjectsApi);
const G = { group: 'meson.dev', version: 'v1alpha1' };

beforeAll(async () => {
  await installCrds();
});

/** Compacts the test cluster's etcd up to its current revision (older resourceVersions: 410 Gone). */
async function compactEtcd(): Promise<void> {
  const dir = dirname(inject('kubeconfigPath'));
  const state = JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8')) as {
    components: { name: string; pid: number }[];
  };
  const pid = state.components.find((c) => c.name === 'etcd')!.pid;
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const url = args.find((a) => a.startsWith('--listen-client-urls='))!.split('=')[1]!;
  const post = async (path: string, body: object) => {
    const r = await fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!r.ok) throw new Error(`etcd ${path}: ${r.status} ${await r.text()}`);
    return (await r.json()) as { header: { revision: string } };
  };
  const { header } = await post('/v3/kv/range', { key: Buffer.from('/').toString('base64') });
  await post('/v3/kv/compaction', { revision: header.revision, physical: true });
}

/** The write calls among counted calls (an informer may re-watch or re-list meanwhile). */
function writes(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([k]) => !['watch', 'list', 'get'].includes(k)));
}

function open(extra: Partial<Parameters<typeof KubernetesStore.open>[0]> = {}) {
  return KubernetesStore.open({
    kubeConfig: ns.kc,
    namespaces: [ns.name],
    stateNamespace: ns.name,
    backoff: { initialMs: 50, maxMs: 1000 },
    ...extra,
  });
}

/** Limits small enough that a test reaches them with a few entries of tens of KiB. */
const SMALL_LIMITS = {
  maxObjectBytes: 200 * 1024,
  shardBytes: 100 * 1024,
  runStatusBytes: 100 * 1024,
  stateValueBytes: 100 * 1024,
};

storeContract('Kubernetes', async () => ({ store: await open(), namespace: ns.name }));

const run = (name: string) => ({
  apiVersion: 'meson.dev/v1alpha1',
  kind: 'WorkflowRun',
  metadata: { name, namespace: ns.name },
  spec: { workflow: 'w' },
});

function instances(runName: string, n: number, phase = 'Succeeded', extra = ''): StepInstanceRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    namespace: ns.name,
    run: runName,
    id: `work[${i}]`,
    phase,
    data: {
      id: `work[${i}]`,
      step: 'work',
      phase,
      attempts: 1,
      startTime: '2026-12-03T06:00:00Z',
      endTime: '2026-12-03T06:00:01Z',
      placement: { source: 'kubernetes', node: `kwok-node-${i % 4}` },
      outputs: { rows: i, path: `s3://bucket/out/part-${i}.parquet${extra}` },
    },
  }));
}

describe('KubernetesStore on a real kube-apiserver', () => {
  it('sees writes of other clients through its watch, and resumes a closed watch without a relist', async () => {
    const store = await open();
    try {
      const seen: string[] = [];
      store.watch((c) => seen.push(`${c.type}:${c.object.metadata.name}`));
      await custom.createNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: 'workflows',
        body: {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'Workflow',
          metadata: { name: 'ext' },
          spec: { definition: { step: { name: 'a', noop: {} } } },
        },
      });
      await waitFor('the store to see ext', async () => store.get('Workflow', ns.name, 'ext') ?? undefined);
      const [inf] = store.informersOf('Workflow');
      const before = { ...inf!.stats };
      inf!.interruptWatch();
      await custom.patchNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: 'workflows',
        name: 'ext',
        body: [{ op: 'add', path: '/metadata/labels', value: { v: '2' } }],
      });
      await custom.deleteNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: 'workflows',
        name: 'ext',
      });
      await waitFor('the store to see ext deleted', async () =>
        store.get('Workflow', ns.name, 'ext') ? undefined : true,
      );
      expect(seen).toEqual(['ADDED:ext', 'MODIFIED:ext', 'DELETED:ext']);
      expect(inf!.stats.watches).toBeGreaterThan(before.watches);
      expect(inf!.stats.relists).toBe(before.relists);
    } finally {
      await store.close();
    }
  });

  it('advances its resourceVersion by bookmarks on a quiet resource, and reconnects after the server ends a watch', async () => {
    const store = await open({ watchTimeoutSeconds: 8 });
    try {
      const [inf] = store.informersOf('DataArtifact');
      const start = inf!.resourceVersion;
      // something else moves etcd's revision on: the quiet informer learns it from bookmarks
      await store.transaction((w) =>
        w.create('Workflow', {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'Workflow',
          metadata: { name: 'x', namespace: ns.name },
          spec: { definition: { step: { name: 'a', noop: {} } } },
        }),
      );
      await waitFor('a bookmark', async () => (inf!.stats.bookmarks > 0 ? true : undefined), {
        timeoutMs: 40_000,
      });
      await waitFor('a reconnect', async () => (inf!.stats.watches > 1 ? true : undefined), {
        timeoutMs: 15_000,
      });
      expect(inf!.stats.relists).toBe(0);
      expect(BigInt(inf!.resourceVersion)).toBeGreaterThanOrEqual(BigInt(start));
      // and a change after the reconnect is still seen
      await custom.createNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: 'dataartifacts',
        body: {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'DataArtifact',
          metadata: { name: 'late' },
          spec: { name: 'v' },
        },
      });
      await waitFor('the store to see late', async () => store.get('DataArtifact', ns.name, 'late'));
    } finally {
      await store.close();
    }
  });

  it('relists on 410 Gone (a resourceVersion older than the watch cache, compacted in etcd) and turns the difference into events', async () => {
    // an informer of its own on DataArtifacts, whose watches can be held back. The watch cache
    // of a custom resource starts when its CRD is installed: a resourceVersion from before
    // that (and compacted away in etcd) is answered with 410 Gone.
    let release: (() => void) | undefined;
    let hold = false;
    let staleRv = '';
    const base = kubeApi(ns.kc);
    const api = {
      ...base,
      watch: async (...args: Parameters<typeof base.watch>) => {
        if (hold) {
          await new Promise<void>((r) => (release = r));
          args[2] = { ...args[2], resourceVersion: staleRv };
        }
        return base.watch(...args);
      },
    };
    const events: string[] = [];
    const inf = new Informer({
      api,
      resource: { group: 'meson.dev', version: 'v1alpha1', plural: 'dataartifacts' },
      namespace: ns.name,
      onChange: (type, obj) => events.push(`${type}:${obj.metadata.name}`),
      backoff: { initialMs: 20, maxMs: 200 },
    });
    const art = (name: string) => ({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'DataArtifact',
      metadata: { name },
      spec: { name: 'views' },
    });
    const create = (name: string) =>
      custom.createNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: 'dataartifacts',
        body: art(name),
      });
    const remove = (name: string) =>
      custom.deleteNamespacedCustomObject({ ...G, namespace: ns.name, plural: 'dataartifacts', name });
    await create('keep');
    await create('drop');
    await inf.start();
    try {
      expect(events.sort()).toEqual(['ADDED:drop', 'ADDED:keep']);
      events.length = 0;
      hold = true;
      inf.interruptWatch();
      await waitFor('the watch to be held', async () => (release ? true : undefined));
      // while it is away: one object goes, one comes, and etcd compacts the past away
      await remove('drop');
      await create('new');
      await compactEtcd();
      staleRv = '2';
      hold = false;
      release!();
      await waitFor('the relist', async () => (inf.stats.relists > 0 ? true : undefined), {
        timeoutMs: 20_000,
      });
      await waitFor('the events of the relist', async () => (events.length >= 2 ? true : undefined));
      expect(events.sort()).toEqual(['ADDED:new', 'DELETED:drop']);
      expect([...inf.items.keys()].sort()).toEqual([`${ns.name}/keep`, `${ns.name}/new`]);
      // and it watches again from the relist's resourceVersion
      await remove('keep');
      await waitFor('the watch after the relist', async () =>
        inf.items.has(`${ns.name}/keep`) ? undefined : true,
      );
    } finally {
      await inf.stop();
    }
  });

  it('stores a 10,000-instance run in shards, every object under 1 MiB, one write per changed shard', async () => {
    const counting = countingKubeApi(kubeApi(ns.kc));
    // 500 per shard (the default is 100): the largest shards this store was sized for
    const store = await open({ api: counting.api, limits: { shardInstances: 500 } });
    try {
      await store.transaction((w) => w.create('WorkflowRun', run('big')));
      const recs = instances('big', 10_000);
      counting.reset();
      let t = performance.now();
      await store.transaction((w) => {
        w.putStepInstances(recs);
        w.putTasks(
          recs.slice(0, 100).map((r) => ({
            namespace: ns.name,
            run: 'big',
            instance: r.id,
            attempt: 1,
            state: 'queued' as const,
            data: { step: 'work' },
          })),
        );
      });
      const firstMs = performance.now() - t;
      const firstWrites = writes(counting.counts);
      const firstApiMs = counting.ms.create ?? 0;
      // 10,000 instances / 500 per shard = 20 shards: 20 creates, nothing else
      expect(firstWrites).toEqual({ create: 20 });
      expect(store.countStepInstances(ns.name, 'big')).toEqual({ Succeeded: 10_000 });

      // a pass that changes 1,000 instances in two shards and finishes 100 tasks: two writes
      counting.reset();
      t = performance.now();
      const changed = instances('big', 1000, 'Failed');
      await store.transaction((w) => {
        w.putStepInstances(changed);
        for (const r of recs.slice(0, 100)) w.deleteTask(ns.name, 'big', r.id);
      });
      const secondMs = performance.now() - t;
      const secondApiMs = counting.ms.replace ?? 0;
      expect(writes(counting.counts)).toEqual({ replace: 2 });

      // the run's status: the controller's summary, and the first failures for kubectl describe
      counting.reset();
      const cur = store.get('WorkflowRun', ns.name, 'big')!;
      await store.transaction((w) =>
        w.updateStatus('WorkflowRun', {
          ...cur,
          status: { phase: 'Running', summary: { total: 10_000, phases: { Succeeded: 9000, Failed: 1000 } } },
        }),
      );
      expect(writes(counting.counts)).toEqual({ replaceStatus: 1 });

      // every object of the run, as the apiserver holds it
      const shards = (await custom.listNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: 'workflowrunshards',
        labelSelector: `${RUN_LABEL}=big`,
      })) as {
        items: {
          metadata: { ownerReferences: { kind: string; name: string }[] };
          spec: { instances: number };
        }[];
      };
      expect(shards.items).toHaveLength(20);
      const sizes = shards.items.map((s) => Buffer.byteLength(JSON.stringify(s)));
      for (const n of sizes) expect(n).toBeLessThan(1024 * 1024);
      expect(shards.items.reduce((n, s) => n + s.spec.instances, 0)).toBe(10_000);
      for (const s of shards.items)
        expect(s.metadata.ownerReferences).toMatchObject([{ kind: 'WorkflowRun', name: 'big' }]);
      const liveRun = (await custom.getNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: 'workflowruns',
        name: 'big',
      })) as { status: { steps: { id: string }[]; summary: { truncated?: boolean } } };
      const runBytes = Buffer.byteLength(JSON.stringify(liveRun));
      expect(runBytes).toBeLessThan(64 * 1024);
      expect(liveRun.status.steps.map((s) => s.id)).toEqual(
        Array.from({ length: 20 }, (_, i) => `work[${i}]`),
      );
      expect(liveRun.status.summary.truncated).toBe(true);
      // kubectl get shows the progress, kubectl describe the first failures
      const get = kubectl(['get', 'mwfr', 'big', '-n', ns.name, '--no-headers']);
      // NAME WORKFLOW VERSION(empty) PHASE STEPS SUCCEEDED FAILED
      expect(get.stdout.trim().split(/\s+/).slice(0, 6)).toEqual([
        'big',
        'w',
        'Running',
        '10000',
        '9000',
        '1000',
      ]);
      const describe = kubectl(['describe', 'mwfr', 'big', '-n', ns.name]);
      expect(describe.stdout).toContain('Failed: ');
      expect(describe.stdout).toContain('work[19]');

      // a fresh store (a restarted operator) reads the same instances back from the shards
      const again = await open();
      try {
        expect(again.countStepInstances(ns.name, 'big')).toEqual({ Failed: 1000, Succeeded: 9000 });
        const page = again.getStepInstances(ns.name, 'big', {
          limit: 3,
          continue: again.getStepInstances(ns.name, 'big', { limit: 999 }).continue,
        });
        expect(page.items.map((r) => r.id)).toEqual(['work[999]', 'work[1000]', 'work[1001]']);
      } finally {
        await again.close();
      }
      // the raw cost of the same bytes: one ConfigMap per shard, same concurrency (8)
      const payload = JSON.stringify(shards.items[0]!.spec);
      t = performance.now();
      const core = ns.kc.makeApiClient(CoreV1Api);
      for (let b = 0; b < 20; b += 8) {
        await Promise.all(
          Array.from({ length: Math.min(8, 20 - b) }, (_, i) =>
            core.createNamespacedConfigMap({
              namespace: ns.name,
              body: { metadata: { name: `raw-${b + i}` }, data: { d: payload } },
            }),
          ),
        );
      }
      const rawMs = performance.now() - t;
      process.stderr.write(
        `kubernetes store, 10,000-instance run: first commit ${JSON.stringify(firstWrites)} in ${firstMs.toFixed(0)} ms ` +
          `(${firstApiMs.toFixed(0)} ms summed over the requests); 20 ConfigMaps of the same size: ${rawMs.toFixed(0)} ms; ` +
          `1,000 changed + 100 tasks finished: 2 replaces in ${secondMs.toFixed(0)} ms (${secondApiMs.toFixed(0)} ms in requests); ` +
          `largest shard ${Math.max(...sizes)} bytes, run object ${runBytes} bytes\n`,
      );
    } finally {
      await store.close();
    }
  });

  it('refuses an object over the size limit before sending it (STORE_TOO_LARGE), and big instances get shards of their own', async () => {
    const counting = countingKubeApi(kubeApi(ns.kc));
    const store = await open({
      api: counting.api,
      limits: SMALL_LIMITS,
    });
    try {
      await store.transaction((w) => w.create('WorkflowRun', run('r')));
      counting.reset();
      const big = 'x'.repeat(60 * 1024);
      await store.transaction((w) => w.putStepInstances(instances('r', 5, 'Succeeded', big)));
      // 60 KiB each, 100 KiB per shard: one per shard
      expect(writes(counting.counts)).toEqual({ create: 5 });
      counting.reset();
      const error = await store
        .transaction((w) => w.putStepInstances(instances('r', 1, 'Succeeded', 'y'.repeat(300 * 1024))))
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'STORE_TOO_LARGE' });
      expect(writes(counting.counts)).toEqual({});
      const cur = store.get('WorkflowRun', ns.name, 'r')!;
      const error2 = await store
        .transaction((w) =>
          w.updateStatus('WorkflowRun', { ...cur, status: { message: 'z'.repeat(300 * 1024) } }),
        )
        .catch((e: unknown) => e);
      expect(error2).toMatchObject({ code: 'STORE_TOO_LARGE' });
      expect(writes(counting.counts)).toEqual({});
      const error3 = await store
        .transaction((w) => w.setState('k', 'v'.repeat(300 * 1024)))
        .catch((e: unknown) => e);
      expect(error3).toMatchObject({ code: 'STORE_TOO_LARGE' });
      expect(writes(counting.counts)).toEqual({});
    } finally {
      await store.close();
    }
  });

  it('writes nothing for entries put again as they were, and a shard freed by finished tasks takes new instances in the same commit', async () => {
    const counting = countingKubeApi(kubeApi(ns.kc));
    const store = await open({
      api: counting.api,
      limits: SMALL_LIMITS,
    });
    try {
      await store.transaction((w) => w.create('WorkflowRun', run('freed')));
      const [first] = instances('freed', 1);
      const task = (instance: string) => ({
        namespace: ns.name,
        run: 'freed',
        instance,
        attempt: 1,
        state: 'launched' as const,
        data: { pod: 'p'.repeat(60 * 1024) },
      });
      counting.reset();
      await store.transaction((w) => {
        w.putStepInstances([first!]);
        w.putTasks([task('work[0]')]);
      });
      expect(writes(counting.counts)).toEqual({ create: 1 });

      // the same instance and task again (a pass that rewrites what is there): no write
      counting.reset();
      await store.transaction((w) => {
        w.putStepInstances([first!]);
        w.putTasks([task('work[0]')]);
      });
      expect(writes(counting.counts)).toEqual({});

      // the 60 KiB task finishes and a 60 KiB instance is added in one commit: the shard's size
      // drops by the task's before the new instance is placed, so both fit in one shard (100 KiB)
      counting.reset();
      const [big] = instances('freed', 2, 'Succeeded', 'x'.repeat(60 * 1024)).slice(1);
      await store.transaction((w) => {
        w.deleteTask(ns.name, 'freed', 'work[0]');
        w.putStepInstances([big!]);
      });
      expect(writes(counting.counts)).toEqual({ replace: 1 });
      expect(store.getStepInstances(ns.name, 'freed', {}).items.map((r) => r.id)).toEqual([
        'work[0]',
        'work[1]',
      ]);
      expect(store.listTasks({ namespace: ns.name, run: 'freed' })).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('keeps runs with the longest names and instance ids of any characters (names of shards never come from them)', async () => {
    const store = await open();
    try {
      const long = `r${'x'.repeat(250)}.z`; // 253: the longest object name
      await store.transaction((w) => w.create('WorkflowRun', run(long)));
      const odd = [
        '../../etc/passwd',
        'a"b\\c\nd',
        'ünï-çødé[1]',
        '${RUN_ID}',
        `x${'y'.repeat(5000)}`,
        'shard-0',
      ].map((id, i) => ({ namespace: ns.name, run: long, id, phase: 'Running', data: { id, i } }));
      await store.transaction((w) => {
        w.putStepInstances(odd);
        w.putTasks(
          odd.map((r) => ({
            namespace: ns.name,
            run: long,
            instance: r.id,
            attempt: 1,
            state: 'queued' as const,
            data: { id: r.id },
          })),
        );
      });
      const again = await open();
      try {
        expect(again.getStepInstances(ns.name, long).items.map((r) => r.id)).toEqual(odd.map((r) => r.id));
        expect(again.listTasks({ namespace: ns.name, run: long }).map((t) => t.data)).toEqual(
          odd.map((r) => ({ id: r.id })),
        );
      } finally {
        await again.close();
      }
      const shards = (await custom.listNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: SHARD_RESOURCE.plural,
      })) as { items: { metadata: { name: string; labels: Record<string, string> } }[] };
      expect(shards.items).toHaveLength(1);
      const shard = shards.items[0]!.metadata;
      expect(shard.name.length).toBeLessThanOrEqual(253);
      expect(shard.name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      expect(shard.labels).not.toHaveProperty(RUN_LABEL); // 253 characters do not fit a label value
      await store.transaction((w) => w.delete('WorkflowRun', ns.name, long));
      const after = (await custom.listNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: SHARD_RESOURCE.plural,
      })) as { items: unknown[] };
      expect(after.items).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('survives shards written by someone else: a huge index, entries that are not JSON, prototype keys', async () => {
    const store = await open();
    try {
      const r = (await store.transaction((w) => w.create('WorkflowRun', run('foreign')))).value;
      const shard = (name: string, index: number, entries: string) => ({
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRunShard',
        metadata: {
          name,
          labels: { 'meson.dev/run-uid': r.metadata.uid },
          ownerReferences: [
            { apiVersion: 'meson.dev/v1alpha1', kind: 'WorkflowRun', name: 'foreign', uid: r.metadata.uid },
          ],
        },
        spec: { run: 'foreign', index, instances: 1, tasks: 0, entries },
      });
      const proto = JSON.stringify({
        instances: [
          {
            id: '__proto__',
            phase: 'Running',
            data: { __proto__: { polluted: true }, constructor: { prototype: { polluted: true } } },
          },
        ],
      });
      for (const body of [
        shard('f-huge', 2 ** 53 - 1, proto),
        shard('f-bad', 3, '{not json'),
        shard('f-arr', 4, '[1,2,3]'),
      ]) {
        await custom.createNamespacedCustomObject({
          ...G,
          namespace: ns.name,
          plural: SHARD_RESOURCE.plural,
          body,
        });
      }
      await waitFor('the store to see the shards', async () =>
        store.getStepInstance(ns.name, 'foreign', '__proto__') ? true : undefined,
      );
      expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
      expect(store.countStepInstances(ns.name, 'foreign')).toEqual({ Running: 1 });
      const t = performance.now();
      await store.transaction((w) => {
        w.putStepInstances(instances('foreign', 3));
        w.deleteStepInstances(ns.name, 'foreign');
      });
      expect(performance.now() - t).toBeLessThan(10_000);
      expect(store.getStepInstances(ns.name, 'foreign').items).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('lets the garbage collector remove the shards of a run deleted by someone else (owner references)', async () => {
    const store = await open();
    try {
      await store.transaction((w) => w.create('WorkflowRun', run('gc')));
      await store.transaction((w) => w.putStepInstances(instances('gc', 600)));
      await custom.deleteNamespacedCustomObject({
        ...G,
        namespace: ns.name,
        plural: 'workflowruns',
        name: 'gc',
      });
      await waitFor(
        'the garbage collector to delete the shards',
        async () => {
          const l = (await custom.listNamespacedCustomObject({
            ...G,
            namespace: ns.name,
            plural: SHARD_RESOURCE.plural,
          })) as { items: unknown[] };
          return l.items.length === 0 ? true : undefined;
        },
        { timeoutMs: 60_000 },
      );
      await waitFor('the store to forget them', async () =>
        store.getStepInstances(ns.name, 'gc').items.length === 0 ? true : undefined,
      );
    } finally {
      await store.close();
    }
  });
});
