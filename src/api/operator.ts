// The REST API of operator mode: the same routes, limits and security as the standalone server
// (./app.ts), over the operator's KubernetesStore (the custom resources are the state), with
// step logs from pods/log (./pod-logs.ts). `mesonctl operator` calls buildOperatorApi and
// listens; the store is the operator's own (one cache, one set of informers).
import type { KubeConfig } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import type { KubernetesStore } from '../store/kubernetes.ts';
import { type ApiDeps, buildApp } from './app.ts';
import { kubePodLogApi, type PodLogApi, PodLogSource } from './pod-logs.ts';
import { DEFAULT_STREAM_LIMITS } from './streams.ts';

export interface OperatorApiOptions extends Omit<ApiDeps, 'store' | 'logs'> {
  store: KubernetesStore;
  /** Reads pods/log with it (the operator's identity: RBAC must grant pods/log get). */
  kubeConfig: KubeConfig;
  /** Largest plain read of a step Pod's log in bytes (default DEFAULT_POD_LOG_MAX_BYTES). */
  maxPodLogBytes?: number;
  /** Tests: another pods/log client. */
  podLogApi?: PodLogApi;
}

export async function buildOperatorApi(o: OperatorApiOptions): Promise<FastifyInstance> {
  const { kubeConfig, maxPodLogBytes, podLogApi, ...deps } = o;
  const logs = new PodLogSource(o.store, podLogApi ?? kubePodLogApi(kubeConfig), {
    pollMs: o.streams?.pollMs ?? DEFAULT_STREAM_LIMITS.pollMs,
    ...(maxPodLogBytes ? { maxBytes: maxPodLogBytes } : {}),
  });
  return buildApp({ ...deps, logs });
}
