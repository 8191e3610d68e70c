import type { TestProject } from 'vitest/node';
import { type Cluster, startCluster } from './index.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin kubeconfig of the run's shared test control plane. */
    kubeconfigPath: string;
    /** https://127.0.0.1:<port> */
    clusterServer: string;
    /** Directory with etcd, kube-apiserver, …, kubectl and kwok. */
    clusterBinDir: string;
    /** Names of the shared cluster's KWOK nodes. */
    clusterNodes: string[];
  }
}

/** Nodes of the shared cluster; MESON_TEST_NODES overrides. */
const SHARED_NODES = Number(process.env.MESON_TEST_NODES ?? 4);

/**
 * Vitest global setup of the `integration` project: one real control plane (etcd,
 * kube-apiserver, kube-controller-manager, kwok) for the whole run, stopped at the end.
 * Tests reach it through `inject('kubeconfigPath')` or the helpers in ./namespace.ts.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const cluster: Cluster = await startCluster({
    nodes: SHARED_NODES,
    log: (m) => process.stderr.write(`test cluster: ${m}\n`),
  });
  process.stderr.write(
    `test cluster: ready in ${Date.now() - started} ms at ${cluster.server} (KUBECONFIG=${cluster.kubeconfigPath})\n`,
  );
  project.provide('kubeconfigPath', cluster.kubeconfigPath);
  project.provide('clusterServer', cluster.server);
  project.provide('clusterBinDir', cluster.binDir);
  project.provide(
    'clusterNodes',
    Array.from({ length: SHARED_NODES }, (_, i) => `kwok-node-${i}`),
  );
  return () => cluster.stop();
}
