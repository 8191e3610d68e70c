// The operator's connection to the API server: which kubeconfig, and the reads the admission
// webhook makes (a run's Workflow and that Workflow's versions).
import { ApiException, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { Workflow, WorkflowVersion } from '../crds/index.ts';
import { WORKFLOW_LABEL } from '../versions/index.ts';
import type { AdmissionLookup } from './admission.ts';

export const GROUP = 'meson.dev';
export const VERSION = 'v1alpha1';

export class KubeConfigError extends Error {
  override name = 'KubeConfigError';
  code = 'OPERATOR_KUBECONFIG';
}

/**
 * --kubeconfig, else $KUBECONFIG, else the in-cluster service account. Where the config comes
 * from is returned for the start-up log.
 */
export function loadKubeConfig(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
): { kc: KubeConfig; source: string } {
  const kc = new KubeConfig();
  const path = flag ?? (env.KUBECONFIG || undefined);
  try {
    if (path !== undefined) {
      // KUBECONFIG may list several files; the first is what kubectl writes to.
      kc.loadFromFile(path.split(':')[0]!);
      if (!kc.getCurrentCluster()) throw new Error('it names no current cluster');
      return { kc, source: path };
    }
    if (!env.KUBERNETES_SERVICE_HOST)
      throw new Error(
        'no --kubeconfig, no KUBECONFIG, and not running in a cluster (KUBERNETES_SERVICE_HOST unset)',
      );
    kc.loadFromCluster();
    return { kc, source: 'in-cluster service account' };
  } catch (err) {
    throw new KubeConfigError(
      `cannot load the Kubernetes configuration${path ? ` from ${path}` : ''}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Milliseconds a lookup may take before the webhook refuses (the API server waits at most timeoutSeconds). */
export const LOOKUP_TIMEOUT_MS = 4_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer from the API server in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** The webhook's reads, on the API server. */
export function kubeAdmissionLookup(kc: KubeConfig, timeoutMs = LOOKUP_TIMEOUT_MS): AdmissionLookup {
  const api = kc.makeApiClient(CustomObjectsApi);
  return {
    async getWorkflow(namespace, name) {
      try {
        return (await withTimeout(
          api.getNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace,
            plural: 'workflows',
            name,
          }),
          timeoutMs,
          'get Workflow',
        )) as Workflow;
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return undefined;
        throw err;
      }
    },
    async listVersions(namespace, workflow) {
      const list = (await withTimeout(
        api.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace,
          plural: 'workflowversions',
          labelSelector: `${WORKFLOW_LABEL}=${workflow}`,
        }),
        timeoutMs,
        'list WorkflowVersions',
      )) as { items?: WorkflowVersion[] };
      return list.items ?? [];
    },
  };
}
