// The operator's connection to the API server: which kubeconfig, and the reads the admission
// webhook makes (a run's Workflow and that Workflow's versions).
import { ApiException, AuthenticationV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import type { Workflow, WorkflowVersion } from '../crds/index.ts';
import { reuseConnections } from '../kube/reuse-connections.ts';
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
  // one connection pool per client config, not a TLS handshake per request
  const kc = reuseConnections(new KubeConfig());
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

/** A short message for an API error (client-node's own message holds the headers and body). */
export function apiErrorMessage(err: unknown): string {
  if (err instanceof ApiException) {
    let detail = '';
    try {
      detail = (JSON.parse(String(err.body)) as { message?: string }).message ?? '';
    } catch {
      detail = String(err.body ?? '').slice(0, 200);
    }
    return `HTTP ${err.code}${detail ? `: ${detail}` : ''}`;
  }
  return (err as Error).message;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * `call`, again while the API server answers 429 or 5xx (a fresh resource's watch cache answers
 * 429 "storage is (re)initializing" for a moment), all within `ms`.
 */
export async function retrying<T>(call: () => Promise<T>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1_000)) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what}: no answer from the API server in ${ms} ms`)),
        Math.max(1, deadline - Date.now()),
      );
    });
    try {
      return await Promise.race([call(), timeout]);
    } catch (err) {
      const code = err instanceof ApiException ? err.code : 0;
      const transient = code === 429 || code >= 500;
      if (!transient || Date.now() + delay >= deadline)
        throw err instanceof ApiException
          ? new Error(`${what}: ${apiErrorMessage(err)}`, { cause: err })
          : err;
    } finally {
      clearTimeout(timer);
    }
    await sleep(delay);
  }
}

/** The webhook's reads, on the API server. */
export function kubeAdmissionLookup(kc: KubeConfig, timeoutMs = LOOKUP_TIMEOUT_MS): AdmissionLookup {
  const api = kc.makeApiClient(CustomObjectsApi);
  return {
    async getWorkflow(namespace, name) {
      try {
        return (await retrying(
          () =>
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
        const cause = (err as { cause?: unknown }).cause;
        if (cause instanceof ApiException && cause.code === 404) return undefined;
        throw err;
      }
    },
    async listVersions(namespace, workflow) {
      const list = (await retrying(
        () =>
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

/**
 * The username the API server knows this process by (a SelfSubjectReview: any authenticated
 * user may ask it, whatever the credentials: service account token, client certificate, OIDC).
 * The webhook lets only this user write system-owned run fields (admission.ts, AdmissionPolicy).
 */
export async function whoAmI(kc: KubeConfig, timeoutMs = LOOKUP_TIMEOUT_MS): Promise<string> {
  const api = kc.makeApiClient(AuthenticationV1Api);
  const review = await retrying(
    () =>
      api.createSelfSubjectReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
      }),
    timeoutMs,
    'SelfSubjectReview (who the operator is)',
  );
  const username = review.status?.userInfo?.username;
  if (!username) throw new Error('SelfSubjectReview: the API server named no user');
  return username;
}
