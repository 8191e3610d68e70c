// charts/meson: lint, what it renders (kept equal to deploy/ and to the operator's own objects),
// a server-side dry run of every rendered object, and a real `helm install` onto the test
// control plane (CRDs Established, every object created, RBAC equal to deploy/rbac).
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  ApiextensionsV1Api,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  FlowcontrolApiserverV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseOperatorArgs } from '../../src/cli/commands/operator.ts';
import { DEFAULT_POD_CONCURRENCY } from '../../src/launchers/kubernetes.ts';
import { DEFAULT_SPARK_SERVICE_ACCOUNT } from '../../src/launchers/kubernetes-pod.ts';
import { LEASE_DEFAULTS } from '../../src/operator/leader.ts';
import { startOperator } from '../../src/operator/process.ts';
import { CLIENT_RATE_DEFAULTS } from '../../src/operator/rate-limit.ts';
import { DEFAULT_STATUS_INTERVAL_MS } from '../../src/operator/reconciler.ts';
import { webhookConfiguration } from '../../src/operator/webhook-config.ts';
import { installCrds } from '../cluster/crds.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { testKubeConfig } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import { CHART, find, helm, helmBinary, type K8sObject, parseObjects, ROOT, template } from './helm.ts';

beforeAll(() => {
  helmBinary();
}, 1_800_000);

const RBAC_KINDS = ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'];

/** deploy/rbac's objects, without the Namespace (helm install --create-namespace makes it). */
function repoRbac(): K8sObject[] {
  return parseObjects(readFileSync(join(ROOT, 'deploy', 'rbac', 'operator.yaml'), 'utf8')).filter((o) =>
    RBAC_KINDS.includes(o.kind),
  );
}

/** What RBAC means: kind, name, namespace, rules, roleRef, subjects (labels are the chart's own). */
function rbacMeaning(o: K8sObject) {
  return {
    kind: o.kind,
    name: o.metadata.name,
    namespace: o.metadata.namespace,
    rules: o.rules,
    roleRef: o.roleRef,
    subjects: o.subjects,
  };
}

/** The same RBAC in any order (helm orders by kind, deploy/rbac by purpose). */
function byKindAndName<T extends { kind: string; name?: string }>(list: T[]): T[] {
  return [...list].sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));
}

/** The operator container's arguments in rendered objects. */
function argsOf(objects: K8sObject[]): string[] {
  const deploy = find(objects, 'Deployment') as K8sObject & {
    spec: { template: { spec: { containers: { args: string[] }[] } } };
  };
  return deploy.spec.template.spec.containers[0]!.args;
}

describe('charts/meson without a cluster', () => {
  it('carries byte-identical copies of deploy/crds (npm run generate writes both)', () => {
    const repo = readdirSync(join(ROOT, 'deploy', 'crds')).sort();
    const chart = readdirSync(join(CHART, 'crds')).sort();
    expect(chart).toEqual(repo);
    for (const f of repo) {
      expect(readFileSync(join(CHART, 'crds', f), 'utf8'), f).toBe(
        readFileSync(join(ROOT, 'deploy', 'crds', f), 'utf8'),
      );
    }
  });

  it('passes helm lint --strict, with default and with non-default values', async () => {
    for (const set of [
      [],
      ['webhook.certManager.enabled=true', 'metrics.serviceMonitor.enabled=true', 'namespaces={a,b}'],
      ['metrics.serviceMonitor.enabled=true', 'metrics.tokenSecret=prom-token'],
    ]) {
      const r = await helm(['lint', '--strict', CHART, ...set.flatMap((s) => ['--set', s])]);
      expect(r.status, `${set.join(' ')}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  });

  it('wires metrics.tokenSecret into MESON_METRICS_TOKEN and the ServiceMonitor, and nothing without it', async () => {
    const env = (objects: K8sObject[]) =>
      (
        find(objects, 'Deployment') as unknown as {
          spec: { template: { spec: { containers: { env: { name: string; valueFrom?: unknown }[] }[] } } };
        }
      ).spec.template.spec.containers[0]!.env;
    const set = ['metrics.serviceMonitor.enabled=true'];
    const open = await template('meson', 'meson-system', set);
    expect(env(open).some((e) => e.name === 'MESON_METRICS_TOKEN')).toBe(false);
    expect(JSON.stringify(find(open, 'ServiceMonitor'))).not.toContain('authorization');
    const guarded = await template('meson', 'meson-system', [...set, 'metrics.tokenSecret=prom-token']);
    expect(env(guarded).find((e) => e.name === 'MESON_METRICS_TOKEN')?.valueFrom).toEqual({
      secretKeyRef: { name: 'prom-token', key: 'token' },
    });
    expect(
      (find(guarded, 'ServiceMonitor') as unknown as { spec: { endpoints: { authorization?: unknown }[] } })
        .spec.endpoints[0]!.authorization,
    ).toEqual({ type: 'Bearer', credentials: { name: 'prom-token', key: 'token' } });
  });

  it('renders, as release "meson" in meson-system, the exact RBAC of deploy/rbac', async () => {
    const objects = await template('meson', 'meson-system');
    const chart = objects.filter((o) => RBAC_KINDS.includes(o.kind)).map(rbacMeaning);
    expect(byKindAndName(chart)).toEqual(byKindAndName(repoRbac().map(rbacMeaning)));
  });

  it('renders the FlowSchema of deploy/apf: Lease requests at the leader-election priority level', async () => {
    const objects = await template('meson', 'meson-system', []);
    const chart = find(objects, 'FlowSchema') as K8sObject & { spec: unknown };
    const [repo] = parseObjects(
      readFileSync(join(ROOT, 'deploy', 'apf', 'flowschema.yaml'), 'utf8'),
    ) as (K8sObject & {
      spec: unknown;
    })[];
    expect(chart.metadata.name).toBe(repo!.metadata.name);
    expect(chart.spec).toEqual(repo!.spec);
    const off = await template('meson', 'meson-system', ['leaderElection.flowSchema=false']);
    expect(off.some((o) => o.kind === 'FlowSchema')).toBe(false);
  });

  it('renders the ValidatingWebhookConfiguration the operator itself would print, with the generated CA', async () => {
    for (const namespaces of [[], ['team-b', 'team-a']]) {
      const set = namespaces.length ? [`namespaces={${namespaces.join(',')}}`] : [];
      const objects = await template('meson', 'meson-system', set);
      const secret = find(objects, 'Secret', 'meson-operator-webhook-tls') as K8sObject & {
        data: Record<string, string>;
      };
      const ca = Buffer.from(secret.data['ca.crt']!, 'base64').toString();
      expect(ca).toMatch(/^-----BEGIN CERTIFICATE-----/);
      const want = webhookConfiguration({ caBundle: ca, namespaces });
      expect(find(objects, 'ValidatingWebhookConfiguration')).toEqual(want);
      // with cert-manager: no Secret from the chart, the CA injected from the Certificate
      const cm = await template('meson', 'meson-system', [...set, 'webhook.certManager.enabled=true']);
      expect(cm.some((o) => o.kind === 'Secret' && o.metadata.name.endsWith('-webhook-tls'))).toBe(false);
      find(cm, 'Certificate', 'meson-operator-webhook');
      expect(find(cm, 'ValidatingWebhookConfiguration')).toEqual(webhookConfiguration({ namespaces }));
    }
  });

  it('runs the operator with flags `mesonctl operator` accepts, matching the RBAC and the Services', async () => {
    const objects = await template('meson', 'meson-system', ['namespaces={a,b}']);
    const deploy = find(objects, 'Deployment') as K8sObject & {
      spec: { replicas: number; template: { spec: Record<string, unknown> } };
    };
    expect(deploy.spec.replicas).toBe(2);
    const pod = deploy.spec.template.spec as {
      serviceAccountName: string;
      containers: { args: string[]; ports: { name: string; containerPort: number }[] }[];
      securityContext: Record<string, unknown>;
    };
    expect(pod.serviceAccountName).toBe('meson-operator');
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const [cmd, ...args] = pod.containers[0]!.args;
    expect(cmd).toBe('operator');
    // the token comes from the chart's Secret (env MESON_API_TOKEN), as the Deployment says
    const env = pod.containers[0]! as unknown as {
      env: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string } } }[];
      resources: { limits: { memory: string } };
    };
    expect(env.env.find((e) => e.name === 'MESON_API_TOKEN')?.valueFrom?.secretKeyRef?.name).toBe(
      'meson-operator-api-token',
    );
    find(objects, 'Secret', 'meson-operator-api-token');
    const flags = parseOperatorArgs(args, { MESON_API_TOKEN: 'from-the-secret' }, '/');
    if (flags === 'help') throw new Error('help');
    expect(flags.namespaces).toEqual(['a', 'b']);
    // the Lease the Role lets it update is the one it elects on
    const role = find(objects, 'Role') as K8sObject & { rules: { resourceNames?: string[] }[] };
    expect(role.rules.flatMap((r) => r.resourceNames ?? [])).toEqual([flags.leaderElection!.name]);
    expect(flags.leaderElection!.namespace).toBe('meson-system');
    // the chart's lease timings are the operator's own defaults
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = flags.leaderElection!;
    expect({ leaseDurationMs, renewDeadlineMs, retryPeriodMs }).toEqual(LEASE_DEFAULTS);
    // and so are its API client's limits
    expect(flags.clientLimits).toEqual({ qps: CLIENT_RATE_DEFAULTS.qps, burst: CLIENT_RATE_DEFAULTS.burst });
    expect(flags.podConcurrency).toBe(DEFAULT_POD_CONCURRENCY);
    expect(flags.podGc).toBe('Never');
    expect(flags.statusIntervalSeconds).toBe(DEFAULT_STATUS_INTERVAL_MS / 1000);
    // Node's heap is capped below the container's memory limit (V8 would size it for the machine)
    const nodeOptions = env.env.find((e) => e.name === 'NODE_OPTIONS')?.value;
    expect(nodeOptions).toBe('--max-old-space-size=1152');
    expect(env.resources.limits.memory).toBe('1536Mi');
    // the webhook Service reaches the port the operator listens on
    const ports = Object.fromEntries(pod.containers[0]!.ports.map((p) => [p.name, p.containerPort]));
    expect(ports.webhook).toBe(flags.webhook!.port);
    expect(ports.http).toBe(flags.api.port);
    expect(ports.rest).toBe(flags.rest!.port);
    const svc = find(objects, 'Service', 'meson-operator') as K8sObject & {
      spec: { ports: { name: string }[] };
    };
    expect(svc.spec.ports.map((p) => p.name)).toContain('rest');
  });

  it('passes scheduler.preemption to the operator as the settings it parses; no flag while empty', async () => {
    expect(argsOf(await template('meson', 'meson-system')).some((a) => a.startsWith('--preemption'))).toBe(
      false,
    );
    const settings = {
      defaultTier: 2,
      namespaces: {
        prod: { preempt: true, tier: 0, guaranteed: { cpus: '4', memory: '8Gi' } },
        batch: { tier: 10, minTier: 5 },
      },
    };
    const r = await helm([
      'template',
      'meson',
      CHART,
      '--namespace',
      'meson-system',
      '--set-json',
      `scheduler.preemption=${JSON.stringify(settings)}`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const [, ...args] = argsOf(parseObjects(r.stdout));
    const flags = parseOperatorArgs(args, { MESON_API_TOKEN: 't' }, '/');
    if (flags === 'help') throw new Error('help');
    expect(flags.preemption).toEqual(settings);
  });

  it('passes copy.roots, copy.s3.secretName and the copy limits to the operator as it parses them; none by default', async () => {
    const [, ...plain] = argsOf(await template('meson', 'meson-system'));
    expect(plain.some((a) => a.startsWith('--copy'))).toBe(false);
    const r = await helm([
      'template',
      'meson',
      CHART,
      '--namespace',
      'meson-system',
      '--set-json',
      'copy={"roots":["s3://data-bucket/team-a/","s3://shared.bucket"],"s3":{"secretName":"meson-s3"},"maxBytes":21474836480,"maxObjects":50000}',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const [, ...args] = argsOf(parseObjects(r.stdout));
    const flags = parseOperatorArgs(args, { MESON_API_TOKEN: 't' }, '/');
    if (flags === 'help') throw new Error('help');
    expect(flags.copy).toEqual({
      roots: ['s3://data-bucket/team-a/', 's3://shared.bucket/'],
      secretName: 'meson-s3',
      limits: { maxBytes: 21474836480, maxObjects: 50000 },
    });
  });

  it('runs spark steps as the spark values say, and grants Spark only in the namespaces listed, only there', async () => {
    const argsOf = (objects: K8sObject[]) =>
      (
        find(objects, 'Deployment') as K8sObject & {
          spec: { template: { spec: { containers: { args: string[] }[] } } };
        }
      ).spec.template.spec.containers[0]!.args.slice(1);
    const defaults = await template('meson', 'meson-system');
    const byDefault = parseOperatorArgs(argsOf(defaults), { MESON_API_TOKEN: 't' }, '/');
    if (byDefault === 'help') throw new Error('help');
    expect(byDefault.spark).toEqual({ serviceAccountName: DEFAULT_SPARK_SERVICE_ACCOUNT });
    // nothing of Spark's in any namespace unless asked
    expect(
      defaults.filter((o) => o.metadata.name.endsWith('-spark') || o.metadata.name === 'meson-spark'),
    ).toEqual([]);
    const objects = await template('meson', 'meson-system', [
      'spark.image=reg.example/spark:1',
      'spark.executorImage=reg.example/exec:1',
      'spark.serviceAccount=spark-driver',
      'spark.uiUrl=https://k8s.example/ui/{namespace}/{pod}/',
      'spark.rbacNamespaces={team-a,team-b}',
    ]);
    const flags = parseOperatorArgs(argsOf(objects), { MESON_API_TOKEN: 't' }, '/');
    if (flags === 'help') throw new Error('help');
    expect(flags.spark).toEqual({
      image: 'reg.example/spark:1',
      executorImage: 'reg.example/exec:1',
      serviceAccountName: 'spark-driver',
      uiUrl: 'https://k8s.example/ui/{namespace}/{pod}/',
    });
    for (const ns of ['team-a', 'team-b']) {
      const here = objects.filter((o) => o.metadata.namespace === ns);
      expect(here.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
        'Role/meson-operator-spark',
        'RoleBinding/meson-operator-spark',
        'ServiceAccount/spark-driver',
      ]);
      const role = here.find((o) => o.kind === 'Role') as K8sObject & {
        rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
      };
      // core resources of this namespace only; no secrets, no escalation verbs, no wildcards
      expect(role.rules.every((r) => r.apiGroups.length === 1 && r.apiGroups[0] === '')).toBe(true);
      expect(role.rules.flatMap((r) => r.resources).sort()).toEqual([
        'configmaps',
        'persistentvolumeclaims',
        'pods',
        'services',
      ]);
      expect(role.rules.flatMap((r) => r.verbs)).not.toContain('*');
      expect(
        role.rules.flatMap((r) => r.verbs).filter((v) => ['bind', 'escalate', 'impersonate'].includes(v)),
      ).toEqual([]);
      const binding = here.find((o) => o.kind === 'RoleBinding') as K8sObject & {
        roleRef: { kind: string; name: string };
        subjects: { kind: string; name: string; namespace: string }[];
      };
      expect(binding.roleRef).toMatchObject({ kind: 'Role', name: 'meson-operator-spark' });
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'spark-driver', namespace: ns }]);
    }
    expect(objects.filter((o) => o.kind === 'ClusterRole')).toHaveLength(1);
  });

  it('refuses values that would break the install, naming the value', async () => {
    for (const [set, message] of [
      ['replicas=two', '/replicas'],
      ['namespaces={../etc}', '/namespaces/0'],
      ['namespaces={Team A}', '/namespaces/0'],
      ['extraArgs={; rm -rf /}', '/extraArgs/0'],
      ['image.pullPolicy=Sometimes', '/image/pullPolicy'],
      ['kubeClient.qps=-5', '/kubeClient/qps'],
      ['kubeClient.burst=0', '/kubeClient/burst'],
      ['podGC=Always', '/podGC'],
      ['podGCDelaySeconds=-1', '/podGCDelaySeconds'],
      ['podGCDelaySeconds=1h', '/podGCDelaySeconds'],
      ['statusIntervalSeconds=61', '/statusIntervalSeconds'],
      ['statusIntervalSeconds=often', '/statusIntervalSeconds'],
      ['heapLimitMiB=-1', '/heapLimitMiB'],
      ['unknownKey=1', 'unknownKey'],
      ['leaderElection.enabled=false', 'replicas > 1 needs leaderElection.enabled=true'],
      ['scheduler.preemption.namespaces.prod.tier=-1', '/scheduler/preemption/namespaces/prod/tier'],
      ['scheduler.preemption.namespaces.prod.preempt=maybe', '/scheduler/preemption/namespaces/prod/preempt'],
      ['scheduler.preemption.defaultTier=1001', '/scheduler/preemption/defaultTier'],
      ['copy.roots={/data}', '/copy/roots/0'],
      ['copy.roots={s3://Bad_Bucket/x/}', '/copy/roots/0'],
      ['copy.s3.secretName=Not A Name', '/copy/s3/secretName'],
      ['copy.maxBytes=-1', '/copy/maxBytes'],
      ['spark.image=--privileged', '/spark/image'],
      ['spark.serviceAccount=Cluster_Admin', '/spark/serviceAccount'],
      ['spark.uiUrl=javascript:alert(1)', '/spark/uiUrl'],
      ['spark.rbacNamespaces={../kube-system}', '/spark/rbacNamespaces/0'],
    ] as const) {
      const r = await helm(['template', 'meson', CHART, '--set', set]);
      expect(r.status, set).not.toBe(0);
      expect(r.stderr, set).toContain(message);
    }
  });
});

describe('charts/meson on the test control plane', () => {
  const release = `h${randomBytes(3).toString('hex')}`;
  const ns = `${release}-system`;
  const watched = `${release}-work`;
  const kubeconfig = () => inject('kubeconfigPath');
  const kc = testKubeConfig();

  beforeAll(async () => {
    // as in the full suite, where earlier files applied deploy/crds: helm must install over them
    await installCrds();
    const core = kc.makeApiClient(CoreV1Api);
    for (const name of [ns, watched])
      await core.createNamespace({ body: { metadata: { name, labels: { 'meson.dev/test': 'true' } } } });
  });
  afterAll(async () => {
    // the webhook points at a Service no kubelet serves: remove it before other tests run
    await helm(['uninstall', release, '--namespace', ns, '--wait'], kubeconfig());
    const core = kc.makeApiClient(CoreV1Api);
    for (const name of [ns, watched]) await core.deleteNamespace({ name }).catch(() => {});
  });

  it('renders objects the API server accepts (kubectl apply --dry-run=server)', async () => {
    const r = await helm(['template', release, CHART, '--namespace', ns, '--set', `namespaces={${watched}}`]);
    expect(r.status, r.stderr).toBe(0);
    const applied = await kubectlAsync(['apply', '--dry-run=server', '-f', '-'], r.stdout);
    expect(applied.status, applied.stderr).toBe(0);
    expect(applied.stdout).toContain(`deployment.apps/${release}-operator created (server dry run)`);
  });

  it("grants Spark's driver account what the Role says in its namespace, and nothing else (kubectl auth can-i)", async () => {
    const r = await helm([
      'template',
      release,
      CHART,
      '--namespace',
      ns,
      '--set',
      `spark.rbacNamespaces={${watched}}`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const spark = parseObjects(r.stdout).filter((o) => o.metadata.namespace === watched);
    expect(spark.map((o) => o.kind).sort()).toEqual(['Role', 'RoleBinding', 'ServiceAccount']);
    const applied = await kubectlAsync(
      ['apply', '-f', '-'],
      spark.map((o) => JSON.stringify(o)).join('\n---\n'),
    );
    expect(applied.status, applied.stderr).toBe(0);
    const as = `--as=system:serviceaccount:${watched}:meson-spark`;
    const can = async (verb: string, resource: string, namespace: string) => {
      // `pods/exec` would name a pod called exec: subresources go in --subresource
      const [kind, sub] = resource.split('#');
      const sr = sub ? [`--subresource=${sub}`] : [];
      return (await kubectlAsync(['auth', 'can-i', verb, kind!, ...sr, as, '-n', namespace])).stdout.trim();
    };
    for (const [verb, resource] of [
      ['create', 'pods'],
      ['watch', 'pods'],
      ['deletecollection', 'pods'],
      ['create', 'configmaps'],
      ['create', 'persistentvolumeclaims'],
      ['create', 'services'],
    ])
      expect(await can(verb, resource, watched), `${verb} ${resource}`).toBe('yes');
    for (const [verb, resource, namespace] of [
      ['get', 'secrets', watched],
      ['create', 'pods', ns],
      ['create', 'pods', 'default'],
      ['update', 'configmaps', watched],
      ['create', 'pods#exec', watched],
      ['get', 'pods#log', watched],
      ['create', 'rolebindings', watched],
      ['get', 'workflowruns.meson.dev', watched],
      ['list', 'nodes', watched],
    ] as const)
      expect(await can(verb, resource, namespace), `${verb} ${resource} in ${namespace}`).toBe('no');
  });

  it('installs: CRDs Established, every object created, RBAC equal to deploy/rbac', async () => {
    const r = await helm(
      // --force-conflicts: the CRDs were applied server-side by another manager (docs/operator.md)
      ['install', release, CHART, '--namespace', ns, '--set', `namespaces={${watched}}`, '--force-conflicts'],
      kubeconfig(),
    );
    expect(r.status, r.stderr).toBe(0);
    const ext = kc.makeApiClient(ApiextensionsV1Api);
    for (const crd of readdirSync(join(CHART, 'crds'))) {
      const name = crd.replace(/\.yaml$/, '');
      await waitFor(`CRD ${name} Established`, async () => {
        const live = await ext.readCustomResourceDefinition({ name });
        return live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')
          ? true
          : undefined;
      });
    }
    // every object of the manifest exists
    const manifest = await helm(['get', 'manifest', release, '--namespace', ns], kubeconfig());
    expect(manifest.status, manifest.stderr).toBe(0);
    const objects = parseObjects(manifest.stdout);
    expect(objects.map((o) => o.kind).sort()).toEqual(
      [
        'ClusterRole',
        'ClusterRoleBinding',
        'Deployment',
        'FlowSchema',
        'Role',
        'Role',
        'RoleBinding',
        'RoleBinding',
        'Secret',
        'Secret',
        'Service',
        'Service',
        'ServiceAccount',
        'ValidatingWebhookConfiguration',
      ].sort(),
    );
    for (const o of objects) {
      const args = ['get', `${o.kind.toLowerCase()}/${o.metadata.name}`, '-o', 'name'];
      const got = await kubectlAsync(o.metadata.namespace ? [...args, '-n', o.metadata.namespace] : args);
      expect(got.status, `${o.kind} ${o.metadata.name}: ${got.stderr}`).toBe(0);
    }
    const apps = kc.makeApiClient(AppsV1Api);
    const deploy = await apps.readNamespacedDeployment({ name: `${release}-operator`, namespace: ns });
    expect(deploy.spec?.replicas).toBe(2);
    // RBAC as stored by the API server, with the release's names mapped back to deploy/rbac's
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const rename = (o: unknown) =>
      JSON.parse(
        JSON.stringify(o)
          .replaceAll(`"${release}-operator`, '"meson-operator')
          .replaceAll(`"${ns}"`, '"meson-system"'),
      );
    const live = [
      await kc
        .makeApiClient(CoreV1Api)
        .readNamespacedServiceAccount({ name: `${release}-operator`, namespace: ns }),
      await rbac.readClusterRole({ name: `${release}-operator` }),
      await rbac.readClusterRoleBinding({ name: `${release}-operator` }),
      await rbac.readNamespacedRole({ name: `${release}-operator-leader-election`, namespace: ns }),
      await rbac.readNamespacedRoleBinding({ name: `${release}-operator-leader-election`, namespace: ns }),
      await rbac.readNamespacedRole({ name: `${release}-operator-store-state`, namespace: ns }),
      await rbac.readNamespacedRoleBinding({ name: `${release}-operator-store-state`, namespace: ns }),
    ].map((o, i) =>
      rbacMeaning(
        rename({
          kind: [...RBAC_KINDS, 'Role', 'RoleBinding'][i],
          metadata: { name: o.metadata?.name, namespace: o.metadata?.namespace },
          ...(('rules' in o && { rules: o.rules?.map(stripEmpty) }) || {}),
          ...(('roleRef' in o && { roleRef: o.roleRef }) || {}),
          ...(('subjects' in o && { subjects: o.subjects }) || {}),
        }),
      ),
    );
    expect(byKindAndName(live)).toEqual(byKindAndName(repoRbac().map(rbacMeaning)));
    // the webhook is scoped to the watched namespace and trusts the generated CA
    const vwc = await kc
      .makeApiClient(AdmissionregistrationV1Api)
      .readValidatingWebhookConfiguration({ name: `${release}-operator` });
    for (const w of vwc.webhooks ?? []) {
      expect(w.namespaceSelector?.matchExpressions?.[0]?.values).toEqual([watched]);
      expect(Buffer.from(w.clientConfig.caBundle ?? '', 'base64').toString()).toMatch(/BEGIN CERTIFICATE/);
    }
  });

  it('upgrades without a new certificate (the Secret is looked up, not generated again)', async () => {
    const before = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: `${release}-operator-webhook-tls`, namespace: ns });
    const r = await helm(
      [
        'upgrade',
        release,
        CHART,
        '--namespace',
        ns,
        '--set',
        `namespaces={${watched}}`,
        '--set',
        'logLevel=debug',
      ],
      kubeconfig(),
    );
    expect(r.status, r.stderr).toBe(0);
    const after = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedSecret({ name: `${release}-operator-webhook-tls`, namespace: ns });
    expect(after.data?.['ca.crt']).toBe(before.data?.['ca.crt']);
    expect(after.data?.['tls.crt']).toBe(before.data?.['tls.crt']);
    const vwc = await kc
      .makeApiClient(AdmissionregistrationV1Api)
      .readValidatingWebhookConfiguration({ name: `${release}-operator` });
    expect(vwc.webhooks?.[0]?.clientConfig.caBundle).toBe(before.data?.['ca.crt']);
  });
  it("runs the operator out of cluster with the chart ServiceAccount's token: it takes the chart's Lease", async () => {
    const token = await kubectlAsync(['create', 'token', `${release}-operator`, '-n', ns, '--duration=10m']);
    expect(token.status, token.stderr).toBe(0);
    const cluster = kc.getCurrentCluster()!;
    const sa = new KubeConfig();
    sa.loadFromOptions({
      clusters: [{ name: 'c', server: cluster.server, caData: cluster.caData }],
      users: [{ name: 'sa', token: token.stdout.trim() }],
      contexts: [{ name: 'sa', cluster: 'c', user: 'sa' }],
      currentContext: 'sa',
    });
    // the flags the chart's Deployment passes (minus the webhook: no Service reaches this process)
    const deploy = await kc
      .makeApiClient(AppsV1Api)
      .readNamespacedDeployment({ name: `${release}-operator`, namespace: ns });
    const args = deploy.spec!.template.spec!.containers[0]!.args!.filter((a) => !a.startsWith('--webhook-'));
    const flags = parseOperatorArgs(args.slice(1), { POD_NAMESPACE: ns, MESON_API_TOKEN: 'x' }, '/');
    if (flags === 'help') throw new Error('help');
    const identity = `helm-test_${release}`;
    const op = await startOperator({
      kc: sa,
      namespaces: flags.namespaces,
      api: { host: '127.0.0.1', port: 0 },
      leaderElection: { ...flags.leaderElection!, identity },
      logger: pino({ level: 'silent' }),
      onLostLeadership: () => {},
    });
    try {
      const leases = kc.makeApiClient(CoordinationV1Api);
      await waitFor('the operator to take the Lease', async () => {
        const lease = await leases
          .readNamespacedLease({ name: `${release}-operator`, namespace: ns })
          .catch(() => undefined);
        return lease?.spec?.holderIdentity === identity ? true : undefined;
      });
      // and the same credentials may not read Secrets (the webhook key among them)
      const denied = await sa
        .makeApiClient(CoreV1Api)
        .readNamespacedSecret({ name: `${release}-operator-webhook-tls`, namespace: ns })
        .then(
          () => 200,
          (err: { code?: number }) => err.code,
        );
      expect(denied).toBe(403);
      // its Lease requests are classified at the leader-election priority level (the API
      // server says which in a response header), not with its Pod creates
      const plc = await kc
        .makeApiClient(FlowcontrolApiserverV1Api)
        .readPriorityLevelConfiguration({ name: 'leader-election' });
      const headers = await rawGet(
        cluster.server,
        cluster.caData!,
        token.stdout.trim(),
        `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${release}-operator`,
      );
      expect(headers['x-kubernetes-pf-prioritylevel-uid']).toBe(plc.metadata?.uid);
    } finally {
      await op.close();
    }
  });
});

/** The response headers of a GET with a bearer token. */
function rawGet(
  server: string,
  caData: string,
  token: string,
  path: string,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(path, server),
      { ca: Buffer.from(caData, 'base64'), headers: { authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve(res.headers) : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The API server leaves out empty lists (resourceNames) that the YAML never had. */
function stripEmpty(rule: object): object {
  return Object.fromEntries(
    Object.entries(rule).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)),
  );
}
