import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import {
  apiserverWrites,
  isControlPlaneWrite,
  parseMetric,
  parseVmHwm,
  parseWriteRequests,
  peakRssBytes,
  watchPodsBound,
} from '../cluster/measure.ts';
import { useNamespace } from '../cluster/namespace.ts';

describe('parseWriteRequests', () => {
  it('sums write verbs over codes and ignores reads, other metrics and comments', () => {
    const text = [
      '# HELP apiserver_request_total [STABLE] Counter of apiserver requests',
      '# TYPE apiserver_request_total counter',
      'apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 7',
      'apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 2',
      'apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 50',
      'apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="resource",subresource="status",verb="PATCH",version="v1"} 3',
      'apiserver_request_total{code="200",component="apiserver",dry_run="",group="meson.dev",resource="workflowruns",scope="resource",subresource="status",verb="APPLY",version="v1alpha1"} 1e+00',
      'apiserver_request_total{code="200",group="x",resource="a\\"b",subresource="",verb="DELETECOLLECTION"} 4',
      'apiserver_request_duration_seconds_count{verb="POST",resource="pods"} 99',
      'apiserver_request_total{code="200",group="",resource="pods",subresource="",verb="WATCH"} 5',
    ].join('\n');
    const series = parseWriteRequests(text);
    const find = (verb: string, resource: string, sub = '') =>
      series.find((s) => s.verb === verb && s.resource === resource && s.subresource === sub)?.count;
    expect(find('POST', 'pods')).toBe(9);
    expect(find('PATCH', 'pods', 'status')).toBe(3);
    expect(find('APPLY', 'workflowruns', 'status')).toBe(1);
    expect(find('DELETECOLLECTION', 'a\\"b')).toBe(4);
    expect(series.some((s) => s.verb === 'LIST' || s.verb === 'WATCH')).toBe(false);
    expect(series).toHaveLength(4);
  });

  it('tells the control plane’s own writes apart', () => {
    const s = (resource: string, subresource = '') => ({
      verb: 'PATCH',
      group: '',
      resource,
      subresource,
      count: 1,
    });
    expect(isControlPlaneWrite(s('pods', 'status'))).toBe(true);
    expect(isControlPlaneWrite(s('pods', 'binding'))).toBe(true);
    expect(isControlPlaneWrite(s('leases'))).toBe(true);
    expect(isControlPlaneWrite(s('nodes', 'status'))).toBe(true);
    expect(isControlPlaneWrite(s('pods'))).toBe(false);
    expect(isControlPlaneWrite(s('workflowrunshards'))).toBe(false);
  });
});

describe('apiserverWrites', () => {
  const ns = useNamespace('measure');
  it('counts the writes made between start and stop, by resource', async () => {
    const core = ns.kc.makeApiClient(CoreV1Api);
    const w = await apiserverWrites(ns.kc, (s) => s.resource === 'configmaps');
    for (let i = 0; i < 3; i++) {
      await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: `c${i}` } } });
    }
    await core.replaceNamespacedConfigMap({
      name: 'c0',
      namespace: ns.name,
      body: { metadata: { name: 'c0' }, data: { a: 'b' } },
    });
    await core.deleteNamespacedConfigMap({ name: 'c1', namespace: ns.name });
    await core.readNamespacedConfigMap({ name: 'c2', namespace: ns.name });
    const delta = await w.stop();
    const cm = delta.series.filter((s) => s.resource === 'configmaps');
    // Only this test writes ConfigMaps in the shared cluster (tests run one file at a time).
    expect(Object.fromEntries(cm.map((s) => [s.verb, s.count]))).toEqual({ POST: 3, PUT: 1, DELETE: 1 });
    expect(delta.counted).toBe(5);
    expect(delta.total).toBeGreaterThanOrEqual(5);
  });
});

describe('parseMetric', () => {
  it('reads a sample with or without labels, and not a metric whose name only starts alike', () => {
    const text = [
      '# HELP meson_process_cpu_seconds_total Total user and system CPU time spent in seconds.',
      '# TYPE meson_process_cpu_seconds_total counter',
      'meson_process_cpu_seconds_total_extra 99',
      'meson_process_cpu_seconds_total 12.5',
      'meson_nodejs_heap_size_used_bytes{space="x"} 1e6',
    ].join('\n');
    expect(parseMetric(text, 'meson_process_cpu_seconds_total')).toBe(12.5);
    expect(parseMetric(text, 'meson_nodejs_heap_size_used_bytes')).toBe(1e6);
    expect(() => parseMetric(text, 'meson_missing')).toThrow(/no sample of meson_missing/);
    expect(() => parseMetric(text, 'a.*')).toThrow(/not a metric name/);
  });
});

describe('peakRssBytes', () => {
  it('reads VmHWM in bytes', () => {
    expect(parseVmHwm('Name:\tnode\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t  100 kB\n')).toBe(
      12345 * 1024,
    );
    expect(() => parseVmHwm('Name:\tnode\n')).toThrow(/VmHWM/);
  });

  it('sees a child’s peak after it has freed the memory', async () => {
    // Touches 96 MiB, drops it, then idles: VmHWM keeps the peak, VmRSS would not.
    const child = spawn(
      process.execPath,
      [
        '--expose-gc',
        '-e',
        'let b = Buffer.alloc(96 * 1024 * 1024, 1); b = null; globalThis.gc(); console.log("freed"); setInterval(() => {}, 1000);',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      await sleep(50);
      expect(peakRssBytes(child.pid as number)).toBeGreaterThan(96 * 1024 * 1024);
      expect(peakRssBytes(process.pid)).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('watchPodsBound', () => {
  const ns = useNamespace('measure');
  it('records each pod once when it has a node, and times out naming the count', async () => {
    const core = ns.kc.makeApiClient(CoreV1Api);
    const node = inject('clusterNodes')[0] as string;
    const seen: string[] = [];
    const watch = await watchPodsBound(ns.kc, {
      namespace: ns.name,
      expected: 3,
      timeoutMs: 60_000,
      onBound: (p) => seen.push(`${p.name}@${p.nodeName}`),
    });
    const pod = (name: string, nodeName?: string) => ({
      metadata: { name, annotations: { 'kwok.meson.dev/run-forever': 'true' } },
      spec: { ...(nodeName ? { nodeName } : {}), containers: [{ name: 'c', image: 'busybox' }] },
    });
    // Unbound (no kube-scheduler in the shared cluster): never counted.
    await core.createNamespacedPod({ namespace: ns.name, body: pod('unbound') });
    for (const name of ['a', 'b', 'c']) {
      await core.createNamespacedPod({ namespace: ns.name, body: pod(name, node) });
    }
    const bound = await watch.done;
    expect([...bound.keys()].sort()).toEqual([`${ns.name}/a`, `${ns.name}/b`, `${ns.name}/c`]);
    // kwok's status patches on the same pods are not counted twice.
    expect(seen.sort()).toEqual([`a@${node}`, `b@${node}`, `c@${node}`]);

    const short = await watchPodsBound(ns.kc, { namespace: ns.name, expected: 5, timeoutMs: 2_000 });
    await expect(short.done).rejects.toThrow(/only 3 of 5 pods bound/);
  });
});
