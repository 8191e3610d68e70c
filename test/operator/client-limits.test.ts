// The operator's API client against a real API server that pushes back: API Priority and
// Fairness with a priority level of a few seats that rejects (429, Retry-After) rather than
// queues, for one test user. A burst of creates through the plain client loses requests; the
// same burst through RateLimitedKubeConfig (src/operator/rate-limit.ts) waits them out and
// loses none, and the operator's own /metrics count its requests by resource and code.
import { ApiException, CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClientObserver, RateLimitedKubeConfig } from '../../src/operator/rate-limit.ts';
import { kubectl } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import {
  applyRbac,
  installCrdsServed,
  reconciling,
  spawnOperator,
  useOperatorProcesses,
  userKubeconfig,
} from './helpers.ts';

const ns = useNamespace('client-limits');
const USER = 'meson-throttled-test';
const NAME = 'meson-throttled-test';

const apf = (namespace: string) => `
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: PriorityLevelConfiguration
metadata: { name: ${NAME} }
spec:
  type: Limited
  limited:
    nominalConcurrencyShares: 1
    lendablePercent: 0
    borrowingLimitPercent: 0
    limitResponse: { type: Reject }
---
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: { name: ${NAME} }
spec:
  priorityLevelConfiguration: { name: ${NAME} }
  matchingPrecedence: 200
  distinguisherMethod: { type: ByUser }
  rules:
    - subjects: [{ kind: User, user: { name: ${USER} } }]
      resourceRules:
        - { verbs: ['*'], apiGroups: ['*'], resources: ['*'], namespaces: ['*'], clusterScope: true }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: ${NAME}, namespace: ${namespace} }
rules:
  - { apiGroups: [''], resources: [pods], verbs: [create, get, list, delete] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: ${NAME}, namespace: ${namespace} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: ${NAME} }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: ${USER} }]
`;

const pod = (name: string): V1Pod => ({
  metadata: { name },
  // bound to a node that does not exist: nothing runs it, nothing schedules it
  spec: { nodeName: 'no-such-node', containers: [{ name: 'c', image: 'busybox' }] },
});

/** Creates `n` pods at once; the HTTP codes of the failures. */
async function burst(core: CoreV1Api, namespace: string, prefix: string, n: number): Promise<number[]> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => core.createNamespacedPod({ namespace, body: pod(`${prefix}-${i}`) })),
  );
  return results.flatMap((r) =>
    r.status === 'rejected' ? [r.reason instanceof ApiException ? r.reason.code : -1] : [],
  );
}

describe('API client under API Priority and Fairness', () => {
  afterAll(() => {
    kubectl(['delete', 'flowschema,prioritylevelconfiguration', NAME, '--ignore-not-found']);
  });

  it('a burst the server rejects in part through the plain client all lands through the limited one', async () => {
    const r = kubectl(['apply', '-f', '-'], apf(ns.name));
    if (r.status !== 0) throw new Error(`cannot configure APF: ${r.stderr}`);
    const { kc } = userKubeconfig(USER);
    // the server really pushes back: without the limiter, creates are lost to 429s
    const lost = await burst(kc.makeApiClient(CoreV1Api), ns.name, 'plain', 120);
    expect(lost.length).toBeGreaterThan(0);
    expect(new Set(lost)).toEqual(new Set([429]));

    const throttled: number[] = [];
    const observer: ClientObserver = {
      request: () => {},
      waited: () => {},
      throttled: (r) => throttled.push(r.code),
    };
    // no client-side rate (qps 0): what saves the burst is honouring Retry-After
    const limited = new RateLimitedKubeConfig(kc, { qps: 0, burst: 1 }, observer);
    expect(await burst(limited.makeApiClient(CoreV1Api), ns.name, 'limited', 120)).toEqual([]);
    expect(throttled.length).toBeGreaterThan(0);
    const pods = await limited.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns.name });
    expect(pods.items.filter((p) => p.metadata?.name?.startsWith('limited-'))).toHaveLength(120);
  }, 120_000);
});

describe('the operator process', () => {
  const processes = useOperatorProcesses();
  beforeAll(async () => {
    await installCrdsServed();
    await applyRbac();
  });

  it('counts its API requests by resource and code, and says its limits', async () => {
    const { path } = userKubeconfig();
    const o = processes.track(
      await spawnOperator('client-limits', path, [
        `--namespace=${ns.name}`,
        '--kube-qps=30',
        '--kube-burst=60',
      ]),
    );
    await reconciling(o);
    const metrics = await (await fetch(`${o.api}/metrics`)).text();
    // the reconciler listed nodes and pods through the limited client at start
    expect(metrics).toMatch(
      /meson_kube_client_requests_total\{method="GET",resource="nodes",code="200"\} [1-9]/,
    );
    expect(metrics).toMatch(
      /meson_kube_client_requests_total\{method="GET",resource="pods",code="200"\} [1-9]/,
    );
    expect(metrics).toMatch(/meson_kube_client_rate_limiter_wait_seconds_count [1-9]/);
    expect(metrics).toContain('meson_kube_client_request_duration_seconds_bucket');
    expect(o.stdout()).toContain('"clientLimits":"30 qps, burst 60"');
  }, 90_000);
});
