// deploy/rbac on a real API server, checked with the operator's own credentials (a client
// certificate for its service account's user name, not system:masters): what the operator needs
// works, and what it must not do is forbidden.
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  type KubeConfig,
  PatchStrategy,
  RbacAuthorizationV1Api,
  setHeaderOptions,
  V1MicroTime,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { KubernetesStore } from '../../src/store/kubernetes.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { testKubeConfig, useNamespace } from '../cluster/namespace.ts';
import {
  applyRbac,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  OPERATOR_USER,
  userKubeconfig,
} from './helpers.ts';

const ns = useNamespace('rbac');
let kc: KubeConfig;

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kc = userKubeconfig().kc;
});

/** The HTTP status of a call: 200 when it succeeded. */
async function status(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    return 200;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

const MESON = { group: 'meson.dev', version: 'v1alpha1' };

describe('deploy/rbac as the operator (real requests with its credentials)', () => {
  it('may do what the operator needs', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const leases = kc.makeApiClient(CoordinationV1Api);
    // a Workflow and a run made by a user (admin here)
    const admin = testKubeConfig().makeApiClient(CustomObjectsApi);
    await admin.createNamespacedCustomObject({
      ...MESON,
      namespace: ns.name,
      plural: 'workflows',
      body: {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'Workflow',
        metadata: { name: 'hello' },
        spec: { definition: { step: { name: 'a', noop: {} } } },
      },
    });
    await admin.createNamespacedCustomObject({
      ...MESON,
      namespace: ns.name,
      plural: 'workflowruns',
      body: {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        metadata: { name: 'hello-1' },
        spec: { workflow: 'hello' },
      },
    });

    const nodes = await core.listNode();
    expect(nodes.items.length).toBeGreaterThan(0);
    const pod = await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'hello-1-a-0' },
        spec: {
          nodeName: nodes.items[0]!.metadata!.name!,
          automountServiceAccountToken: false,
          containers: [{ name: 'step', image: 'busybox' }],
        },
      },
    });
    expect(pod.metadata?.name).toBe('hello-1-a-0');
    expect((await core.listPodForAllNamespaces()).items.some((p) => p.metadata?.name === 'hello-1-a-0')).toBe(
      true,
    );

    const run = (await custom.getNamespacedCustomObject({
      ...MESON,
      namespace: ns.name,
      plural: 'workflowruns',
      name: 'hello-1',
    })) as Record<string, unknown>;
    const updated = (await custom.replaceNamespacedCustomObjectStatus({
      ...MESON,
      namespace: ns.name,
      plural: 'workflowruns',
      name: 'hello-1',
      body: { ...run, status: { phase: 'Running' } },
    })) as { status?: { phase?: string } };
    expect(updated.status?.phase).toBe('Running');
    await custom.createNamespacedCustomObject({
      ...MESON,
      namespace: ns.name,
      plural: 'workflowversions',
      body: {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowVersion',
        metadata: { name: 'hello-v1', labels: { 'meson.dev/workflow': 'hello' } },
        spec: {
          workflow: 'hello',
          version: 1,
          specHash: 'abc',
          definition: { step: { name: 'a', noop: {} } },
        },
      },
    });
    await custom.listClusterCustomObject({ ...MESON, plural: 'dataartifacts' });

    await kc.makeApiClient(EventsV1Api).createNamespacedEvent({
      namespace: ns.name,
      body: {
        metadata: { name: `hello-1.${Date.now().toString(16)}` },
        eventTime: new V1MicroTime(),
        reportingController: 'meson.dev/operator',
        reportingInstance: 'test',
        action: 'Started',
        reason: 'Started',
        type: 'Normal',
        regarding: {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'WorkflowRun',
          name: 'hello-1',
          namespace: ns.name,
        },
      },
    });

    // the Lease: created (cannot be limited by name), read and updated by its name
    await testKubeConfig()
      .makeApiClient(CoordinationV1Api)
      .deleteNamespacedLease({ name: 'meson-operator', namespace: OPERATOR_NAMESPACE })
      .catch(() => {});
    await leases.createNamespacedLease({
      namespace: OPERATOR_NAMESPACE,
      body: {
        metadata: { name: 'meson-operator' },
        spec: { holderIdentity: 'rbac-test', leaseDurationSeconds: 1 },
      },
    });
    const lease = await leases.readNamespacedLease({ name: 'meson-operator', namespace: OPERATOR_NAMESPACE });
    lease.spec = { ...lease.spec, holderIdentity: '' };
    await leases.replaceNamespacedLease({
      name: 'meson-operator',
      namespace: OPERATOR_NAMESPACE,
      body: lease,
    });

    await core.deleteNamespacedPod({ name: 'hello-1-a-0', namespace: ns.name });
  });

  it('may not read secrets, grant itself rights, write nodes or deployments, or update pods', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const forbidden: [string, () => Promise<unknown>][] = [
      ['list secrets', () => core.listSecretForAllNamespaces()],
      [
        'get a secret in its namespace',
        () => core.readNamespacedSecret({ name: 'x', namespace: OPERATOR_NAMESPACE }),
      ],
      ['list configmaps', () => core.listNamespacedConfigMap({ namespace: ns.name })],
      [
        'create a clusterrole',
        () =>
          kc.makeApiClient(RbacAuthorizationV1Api).createClusterRole({
            body: {
              metadata: { name: 'escalate' },
              rules: [{ apiGroups: ['*'], resources: ['*'], verbs: ['*'] }],
            },
          }),
      ],
      [
        'bind a role',
        () =>
          kc.makeApiClient(RbacAuthorizationV1Api).createNamespacedRoleBinding({
            namespace: ns.name,
            body: {
              metadata: { name: 'escalate' },
              roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
              subjects: [{ kind: 'User', name: OPERATOR_USER }],
            },
          }),
      ],
      [
        'patch a node',
        () =>
          core.patchNode(
            { name: 'kwok-node-0', body: { metadata: { labels: { stolen: 'yes' } } } },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          ),
      ],
      ['get one node (informers list and watch)', () => core.readNode({ name: 'kwok-node-0' })],
      ['delete a node', () => core.deleteNode({ name: 'kwok-node-0' })],
      [
        'patch a deployment',
        () =>
          kc
            .makeApiClient(AppsV1Api)
            .patchNamespacedDeployment(
              { name: 'x', namespace: ns.name, body: { spec: { replicas: 0 } } },
              setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
            ),
      ],
      [
        'update a pod',
        () =>
          core.patchNamespacedPod(
            { name: 'x', namespace: ns.name, body: { metadata: { labels: { a: 'b' } } } },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          ),
      ],
      [
        'create a service account token',
        () =>
          core.createNamespacedServiceAccountToken({
            name: 'default',
            namespace: ns.name,
            body: { spec: { audiences: [] } },
          }),
      ],
      [
        'read another lease',
        () =>
          kc
            .makeApiClient(CoordinationV1Api)
            .readNamespacedLease({ name: 'kube-scheduler', namespace: OPERATOR_NAMESPACE }),
      ],
      [
        'read leases in another namespace',
        () => kc.makeApiClient(CoordinationV1Api).listNamespacedLease({ namespace: 'kube-system' }),
      ],
    ];
    for (const [what, call] of forbidden) expect(await status(call), what).toBe(403);
  });

  it("runs the Kubernetes store with the operator's own credentials: shards, state, status", async () => {
    const store = await KubernetesStore.open({ kubeConfig: kc, stateNamespace: OPERATOR_NAMESPACE });
    try {
      const made = await store.transaction((w) =>
        w.create('WorkflowRun', {
          apiVersion: 'meson.dev/v1alpha1',
          kind: 'WorkflowRun',
          metadata: { name: 'store-r', namespace: ns.name },
          spec: { workflow: 'w' },
        }),
      );
      await store.transaction((w) => {
        w.putStepInstances(
          Array.from({ length: 600 }, (_, i) => ({
            namespace: ns.name,
            run: 'store-r',
            id: `s[${i}]`,
            phase: 'Running',
            data: {},
          })),
        );
        w.putTasks([
          { namespace: ns.name, run: 'store-r', instance: 's[0]', attempt: 1, state: 'queued', data: {} },
        ]);
        w.setState(`cron/${ns.name}/w/0`, 42);
        w.updateStatus('WorkflowRun', { ...made.value, status: { phase: 'Running' } });
      });
      expect(store.countStepInstances(ns.name, 'store-r')).toEqual({ Running: 600 });
      expect(store.getState(`cron/${ns.name}/w/0`)).toBe(42);
      await store.transaction((w) => w.delete('WorkflowRun', ns.name, 'store-r'));
      expect(store.listTasks({ namespace: ns.name })).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('kubectl auth can-i --as the operator: the whole table', async () => {
    const can = async (verb: string, resource: string, namespace?: string) => {
      // `pods/exec` would name a pod called exec: subresources go in --subresource
      const [kind, sub] = resource.split('#');
      const args = [
        'auth',
        'can-i',
        verb,
        kind!,
        ...(sub ? [`--subresource=${sub}`] : []),
        `--as=${OPERATOR_USER}`,
      ];
      const r = await kubectlAsync(namespace ? [...args, '-n', namespace] : [...args, '--all-namespaces']);
      return r.stdout.trim();
    };
    const yes: [string, string, string?][] = [
      ['create', 'pods'],
      ['delete', 'pods'],
      // --pod-gc deletes a finished run's Pods in one request
      ['deletecollection', 'pods'],
      ['watch', 'pods'],
      ['get', 'pods#log'],
      ['list', 'nodes'],
      ['watch', 'nodes'],
      ['create', 'events'],
      ['patch', 'events.events.k8s.io'],
      ['watch', 'workflows.meson.dev'],
      // the REST API (--rest-listen) writes Workflows for its callers
      ['create', 'workflows.meson.dev'],
      ['delete', 'workflows.meson.dev'],
      ['update', 'workflowruns.meson.dev#status'],
      ['patch', 'dataartifacts.meson.dev#status'],
      ['create', 'workflowversions.meson.dev'],
      ['update', 'workflowruns.meson.dev#finalizers'],
      ['create', 'leases', OPERATOR_NAMESPACE],
      ['update', 'leases/meson-operator', OPERATOR_NAMESPACE],
      ['create', 'workflowrunshards.meson.dev'],
      ['deletecollection', 'workflowrunshards.meson.dev'],
      ['update', 'configmaps', OPERATOR_NAMESPACE],
      ['watch', 'configmaps', OPERATOR_NAMESPACE],
    ];
    const no: [string, string, string?][] = [
      ['update', 'pods'],
      ['create', 'pods#exec'],
      ['get', 'secrets'],
      ['list', 'configmaps'],
      ['update', 'configmaps', 'kube-system'],
      ['delete', 'configmaps', OPERATOR_NAMESPACE],
      ['update', 'nodes'],
      ['get', 'nodes'],
      ['create', 'clusterroles'],
      ['escalate', 'clusterroles'],
      ['impersonate', 'users'],
      ['patch', 'deployments'],
      ['delete', 'dataartifacts.meson.dev'],
      ['update', 'leases', 'kube-system'],
      ['update', 'leases/other', OPERATOR_NAMESPACE],
      ['create', 'customresourcedefinitions'],
      ['create', 'validatingwebhookconfigurations'],
    ];
    for (const [verb, resource, namespace] of yes)
      expect(await can(verb, resource, namespace), `${verb} ${resource}`).toBe('yes');
    for (const [verb, resource, namespace] of no)
      expect(await can(verb, resource, namespace), `${verb} ${resource}`).toBe('no');
  });
});
