// Shared pieces of the operator's integration tests: a webhook serving certificate made with
// openssl, the operator's own identity (a client certificate for its service account signed by
// the test cluster's client CA), the RBAC of deploy/rbac, and webhook registration.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import {
  AdmissionregistrationV1Api,
  CoordinationV1Api,
  CustomObjectsApi,
  KubeConfig,
} from '@kubernetes/client-node';
import { afterEach, inject } from 'vitest';
import { runCli } from '../../src/cli/cli.ts';
import { webhookConfiguration } from '../../src/operator/webhook-config.ts';
import { CLIENT_CERT_EXTENSIONS, makeCa, signLeaf } from '../cluster/certs.ts';
import { installCrds } from '../cluster/crds.ts';
import { freePorts } from '../cluster/health.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { testKubeConfig } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RBAC_FILE = join(ROOT, 'deploy', 'rbac', 'operator.yaml');
export const OPERATOR_NAMESPACE = 'meson-system';
export const OPERATOR_USER = 'system:serviceaccount:meson-system:meson-operator';

export interface WebhookCerts {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  ca: string;
  cert: string;
  key: string;
}

/** A fresh CA and a serving certificate for https://127.0.0.1 signed by it. */
export function webhookCerts(): WebhookCerts {
  const dir = mkdtempSync(join(tmpdir(), 'meson-webhook-pki-'));
  makeCa(dir, 'webhook-ca', 'meson-test-webhook-ca');
  signLeaf(dir, {
    name: 'webhook',
    ca: 'webhook-ca',
    subject: '/CN=meson-operator-webhook',
    extensions: [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1',
      '',
    ].join('\n'),
  });
  const p = (f: string) => join(dir, f);
  return {
    dir,
    caFile: p('webhook-ca.crt'),
    certFile: p('webhook.crt'),
    keyFile: p('webhook.key'),
    ca: readFileSync(p('webhook-ca.crt'), 'utf8'),
    cert: readFileSync(p('webhook.crt'), 'utf8'),
    key: readFileSync(p('webhook.key'), 'utf8'),
  };
}

/**
 * A kubeconfig for `user` (default: the operator's service account name) with a client
 * certificate signed by the test cluster's client CA: the API server authenticates it as that
 * user, and RBAC grants it only what its bindings say (it is not in system:masters).
 */
export function userKubeconfig(user = OPERATOR_USER): { path: string; kc: KubeConfig } {
  const clusterDir = dirname(inject('kubeconfigPath'));
  const pki = join(clusterDir, 'pki');
  const dir = mkdtempSync(join(tmpdir(), 'meson-user-'));
  // signLeaf names the CA by its file stem in `dir`: copy the cluster's client CA there.
  writeFileSync(join(dir, 'client-ca.crt'), readFileSync(join(pki, 'client-ca.crt')));
  writeFileSync(join(dir, 'client-ca.key'), readFileSync(join(pki, 'client-ca.key')), { mode: 0o600 });
  signLeaf(dir, {
    name: 'user',
    ca: 'client-ca',
    subject: `/CN=${user}`,
    extensions: CLIENT_CERT_EXTENSIONS,
  });
  const admin = testKubeConfig();
  const cluster = admin.getCurrentCluster()!;
  const b64 = (f: string) => readFileSync(join(dir, f)).toString('base64');
  const text = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: meson-test',
    '  cluster:',
    `    server: ${cluster.server}`,
    `    certificate-authority-data: ${cluster.caData}`,
    'users:',
    '- name: operator',
    '  user:',
    `    client-certificate-data: ${b64('user.crt')}`,
    `    client-key-data: ${b64('user.key')}`,
    'contexts:',
    '- name: operator',
    '  context: { cluster: meson-test, user: operator }',
    'current-context: operator',
    '',
  ].join('\n');
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, text, { mode: 0o600 });
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return { path, kc };
}

/** kubectl apply of deploy/rbac (idempotent). */
export async function applyRbac(): Promise<void> {
  const r = await kubectlAsync(['apply', '-f', RBAC_FILE]);
  if (r.status !== 0) throw new Error(`kubectl apply -f ${RBAC_FILE} failed: ${r.stderr}`);
}

/** Registers the webhook at `url` for `namespace` only (other tests share the cluster). */
export async function registerWebhook(
  name: string,
  url: string,
  ca: string,
  namespace: string,
): Promise<void> {
  const api = testKubeConfig().makeApiClient(AdmissionregistrationV1Api);
  const body = webhookConfiguration({ name, url, caBundle: ca, namespaces: [namespace] });
  await api.deleteValidatingWebhookConfiguration({ name }).catch(() => {});
  await api.createValidatingWebhookConfiguration({ body: body as never });
}

export async function unregisterWebhook(name: string): Promise<void> {
  const api = testKubeConfig().makeApiClient(AdmissionregistrationV1Api);
  await api.deleteValidatingWebhookConfiguration({ name }).catch(() => {});
}

/**
 * A Workflow the CRD's OpenAPI schema accepts (so the API server's own checks pass) and the
 * project's validator refuses: an unknown name in a parameter expression.
 */
export const INVALID_WORKFLOW = (namespace: string, name = 'broken') => `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata:
  name: ${name}
  namespace: ${namespace}
spec:
  parameters:
    - { name: dateint, type: long, expression: "tsToDateInt(RUN_TSS)" }
  definition:
    step: { name: greet, shell: { script: "echo \${dateint}" } }
`;

export const INVALID_MESSAGE =
  'spec.parameters[0].expression: unknown name "RUN_TSS" (did you mean "RUN_TS"?) at character 12 in "tsToDateInt(RUN_TSS)"';

export const VALID_WORKFLOW = (namespace: string, name = 'hello') => `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata:
  name: ${name}
  namespace: ${namespace}
spec:
  parameters:
    - { name: who, type: string, value: world }
    - { name: dateint, type: long, expression: "tsToDateInt(RUN_TS)" }
  definition:
    step: { name: greet, shell: { script: "echo \${who} \${dateint}" } }
`;

/**
 * The API server picks up webhook configurations from an informer: waits until a server-side
 * dry run of an invalid Workflow is refused by our webhook.
 */
export async function waitWebhookActive(namespace: string): Promise<void> {
  let last = '';
  await waitFor(
    'the webhook to be called by the API server',
    async () => {
      const r = await kubectlAsync(
        ['apply', '--dry-run=server', '-f', '-'],
        INVALID_WORKFLOW(namespace, 'probe'),
      );
      last = `${r.status}: ${r.stdout}${r.stderr}`;
      return r.status !== 0 && r.stderr.includes(INVALID_MESSAGE) ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250, describe: () => `last kubectl answer ${last}` },
  );
}

/**
 * installCrds, then waits until every meson.dev kind is listable: right after a CRD is
 * established its watch cache answers 429 "storage is (re)initializing" for a moment.
 */
export async function installCrdsServed(): Promise<void> {
  await installCrds();
  const api = testKubeConfig().makeApiClient(CustomObjectsApi);
  for (const plural of ['workflows', 'workflowversions', 'workflowruns', 'dataartifacts'])
    await waitFor(`${plural} to be served`, async () => {
      await api.listClusterCustomObject({ group: 'meson.dev', version: 'v1alpha1', plural });
      return true;
    });
}

export interface OperatorProcess {
  identity: string;
  child: ChildProcess;
  /** http://127.0.0.1:PORT of /healthz, /readyz, /metrics. */
  api: string;
  stderr: () => string;
  /** Its log (pino JSON lines on stdout). */
  stdout: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts `mesonctl operator` as a process with the operator's own credentials (`kubeconfig`),
 * a short Lease in meson-system, and `args`; resolves once it answers /healthz. The caller
 * kills it (SIGKILL) when done.
 */
export async function spawnOperator(
  identity: string,
  kubeconfig: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<OperatorProcess> {
  const [apiPort] = await freePorts(1);
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'src', 'cli', 'main.ts'),
      'operator',
      `--kubeconfig=${kubeconfig}`,
      `--api-listen=127.0.0.1:${apiPort}`,
      `--lease-namespace=${OPERATOR_NAMESPACE}`,
      '--lease-duration=3',
      '--renew-deadline=2',
      '--retry-period=0.25',
      `--identity=${identity}`,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '', ...env } },
  );
  let err = '';
  let out = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const r: OperatorProcess = {
    identity,
    child,
    api: `http://127.0.0.1:${apiPort}`,
    stderr: () => err,
    stdout: () => out,
    exited,
  };
  await waitFor(
    `operator ${identity} to answer /healthz`,
    async () => {
      const res = await fetch(`${r.api}/healthz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    { timeoutMs: 30_000, describe: () => err },
  ).catch(async (e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  return r;
}

/** /readyz of an operator process. */
export async function readyz(r: {
  api: string;
}): Promise<{ status: number; body: { ready: boolean; leaderElection: string; informers: string } }> {
  const res = await fetch(`${r.api}/readyz`);
  return {
    status: res.status,
    body: (await res.json()) as { ready: boolean; leaderElection: string; informers: string },
  };
}

/**
 * For a test file that starts operator processes: `track(o)` them, and after each test every
 * tracked process is SIGKILLed and the Lease deleted, so the next test elects afresh.
 */
export function useOperatorProcesses(): { track(o: OperatorProcess): OperatorProcess } {
  const running: OperatorProcess[] = [];
  afterEach(async () => {
    for (const o of running.splice(0)) {
      o.child.kill('SIGKILL');
      await o.exited;
    }
    await testKubeConfig()
      .makeApiClient(CoordinationV1Api)
      .deleteNamespacedLease({ name: 'meson-operator', namespace: OPERATOR_NAMESPACE })
      .catch(() => {});
  });
  return {
    track(o) {
      running.push(o);
      return o;
    },
  };
}

/** Waits until `o` leads and its reconciler has synced (its /readyz says so). */
export async function reconciling(o: OperatorProcess, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    `${o.identity} to lead and reconcile`,
    async () => ((await readyz(o)).body.informers === 'synced: reconciling' ? true : undefined),
    { timeoutMs, describe: () => o.stdout().slice(-2000) },
  );
}

/** `mesonctl ARGS -n NAMESPACE` in-process, with `env` and `cwd`: its exit code and output. */
export async function mesonctl(
  namespace: string,
  args: string[],
  env: Record<string, string>,
  cwd: string,
): Promise<{ code: number | undefined; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const stdin = new PassThrough();
  stdin.end('');
  const code = await runCli([...args, '-n', namespace], {
    stdout: (s) => void out.push(s),
    stderr: (s) => void err.push(s),
    stdin,
    cwd,
    env,
  });
  return { code, out: out.join(''), err: err.join('') };
}
