// The services on the store port in operator mode: the same RetentionSweeper over the
// KubernetesStore (run queries from the informer cache, deletions through the API server, no
// run files), and the same WebhookQueue (deliveries as state ConfigMaps, resumed by a new
// process).
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkflowRun } from '../../src/crds/index.ts';
import { parseAllowList } from '../../src/notify/address.ts';
import { PENDING_PREFIX, WebhookQueue } from '../../src/notify/queue.ts';
import { buildRunNotification } from '../../src/notify/summary.ts';
import { RetentionSweeper } from '../../src/retention/index.ts';
import { KubernetesStore } from '../../src/store/kubernetes.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { hook } from '../notify/hook.ts';
import { installCrdsServed } from './helpers.ts';

const ns = useNamespace('services');
const stores: KubernetesStore[] = [];
const quiet = { info: () => {}, warn: () => {}, error: () => {} };

function open() {
  return KubernetesStore.open({
    kubeConfig: ns.kc,
    namespaces: [ns.name],
    stateNamespace: ns.name,
    backoff: { initialMs: 50, maxMs: 1000 },
  }).then((s) => {
    stores.push(s);
    return s;
  });
}

beforeAll(async () => {
  await installCrdsServed();
});

afterEach(async () => {
  for (const s of stores.splice(0)) await s.close();
});

describe('retention over the Kubernetes store', () => {
  it('deletes the finished runs beyond keepLast, keeps unfinished ones and children of kept parents', async () => {
    const store = await open();
    const run = async (name: string, phase: string | undefined, endMin: number, parent?: string) => {
      const created = await store.transaction((w) =>
        w.create<WorkflowRun>('WorkflowRun', {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'WorkflowRun',
          metadata: { name, namespace: ns.name },
          spec: {
            workflow: 'w',
            initiator: parent ? { type: 'subworkflow', parent: { run: parent } } : { type: 'api' },
          },
        } as WorkflowRun),
      );
      if (phase)
        await store.transaction((w) =>
          w.updateStatus('WorkflowRun', {
            ...created.value,
            status: { phase, endTime: new Date(Date.UTC(2026, 0, 1, 0, endMin)).toISOString() },
          }),
        );
    };
    await run('old', 'Succeeded', 1);
    await run('older', 'Failed', 0);
    await run('newest', 'Succeeded', 5);
    await run('child', 'Succeeded', 4, 'newest'); // goes with its parent, which is kept
    await run('running', undefined, 0);
    const logs: string[] = [];
    const logger = { info: (_: object, m?: string) => logs.push(m ?? ''), warn: () => {}, error: () => {} };
    const sweeper = new RetentionSweeper({ store, logger, defaults: { keepLast: 1 }, intervalMs: 0 });
    const result = await sweeper.sweep();
    expect(result.deleted.map((d) => d.run).sort()).toEqual(['old', 'older']);
    const left = await kubectlAsync(['get', 'workflowruns.meson.dev', '-n', ns.name, '-o', 'name']);
    expect(left.stdout.trim().split('\n').sort()).toEqual(
      ['child', 'newest', 'running'].map((n) => `workflowrun.meson.dev/${n}`),
    );
    expect((await sweeper.sweep()).deleted).toEqual([]);
    sweeper.stop();
  });
});

describe('webhook deliveries over the Kubernetes store', () => {
  it('keeps a delivery in a state ConfigMap until delivered, and a new process resumes it', async () => {
    let answer = 503;
    const h = await hook(() => answer);
    const { url, bodies } = h;
    try {
      const allow = parseAllowList('127.0.0.1');
      const notification = buildRunNotification(
        {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'WorkflowRun',
          metadata: { name: 'r1', namespace: ns.name },
          spec: { workflow: 'w' },
          status: { phase: 'Failed' },
        },
        'failure',
      );
      const first = new WebhookQueue({
        store: await open(),
        logger: quiet,
        allow,
        retry: { initialDelayMs: 60_000 },
      });
      first.start();
      expect(await first.enqueue([{ on: ['failure'], webhook: { url } }], notification)).toBe(1);
      await first.idle();
      first.stop();
      expect(bodies).toHaveLength(1);
      const configMaps = async () =>
        (
          await kubectlAsync(['get', 'configmaps', '-n', ns.name, '-l', 'meson.dev/state=true', '-o', 'name'])
        ).stdout
          .trim()
          .split('\n')
          .filter((l) => l !== '');
      expect(await configMaps()).toHaveLength(1);

      // another operator process (a new leader) starts after the retry delay and delivers it
      answer = 200;
      const store = await open();
      expect(store.listState(PENDING_PREFIX)).toHaveLength(1);
      const second = new WebhookQueue({ store, logger: quiet, allow, now: () => Date.now() + 61_000 });
      second.start();
      await second.idle();
      second.stop();
      expect(bodies).toHaveLength(2);
      expect(store.listState(PENDING_PREFIX)).toEqual([]);
      expect(await configMaps()).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
