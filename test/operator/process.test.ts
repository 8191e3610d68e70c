// `mesonctl operator` as a process on a real API server, with the operator's own credentials
// (deploy/rbac): health and readiness, the admission webhook, and leader hand-over on SIGTERM
// and after SIGKILL between replicas.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoordinationV1Api, V1MicroTime } from '@kubernetes/client-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../cluster/health.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { testKubeConfig, useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import {
  applyRbac,
  INVALID_MESSAGE,
  INVALID_WORKFLOW,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  ROOT,
  readyz,
  registerWebhook,
  spawnOperator,
  unregisterWebhook,
  userKubeconfig,
  VALID_WORKFLOW,
  type WebhookCerts,
  waitWebhookActive,
  webhookCerts,
} from './helpers.ts';

const ns = useNamespace('process');
const WEBHOOK = 'meson-process-test';
let kubeconfig: string;
let certs: WebhookCerts;

interface Replica extends OperatorProcess {
  webhook: string;
}
const replicas: Replica[] = [];

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
  certs = webhookCerts();
});
afterAll(async () => {
  await unregisterWebhook(WEBHOOK);
});
afterEach(async () => {
  for (const r of replicas.splice(0)) {
    r.child.kill('SIGKILL');
    await r.exited;
  }
});

async function clearLease(): Promise<void> {
  await testKubeConfig()
    .makeApiClient(CoordinationV1Api)
    .deleteNamespacedLease({ name: 'meson-operator', namespace: OPERATOR_NAMESPACE })
    .catch(() => {});
}

async function holder(): Promise<string | undefined> {
  const lease = await testKubeConfig()
    .makeApiClient(CoordinationV1Api)
    .readNamespacedLease({ name: 'meson-operator', namespace: OPERATOR_NAMESPACE });
  return lease.spec?.holderIdentity;
}

async function startReplica(identity: string, extra: string[] = []): Promise<Replica> {
  const [webhookPort] = await freePorts(1);
  const op = await spawnOperator(identity, kubeconfig, [
    `--webhook-listen=127.0.0.1:${webhookPort}`,
    `--webhook-cert=${certs.certFile}`,
    `--webhook-key=${certs.keyFile}`,
    ...extra,
  ]);
  const r: Replica = { ...op, webhook: `https://127.0.0.1:${webhookPort}` };
  replicas.push(r);
  return r;
}

describe('mesonctl operator as a process, with the operator’s RBAC', () => {
  it('says what it serves, is ready, and its webhook refuses invalid objects', async () => {
    await clearLease();
    const a = await startReplica('replica-a');
    expect(a.stderr()).toContain(
      'serves admission webhook, leader election and, while leading, reconciliation of workflows and runs',
    );
    await waitFor('a to lead', async () =>
      (await readyz(a)).body.leaderElection === 'leading' ? true : undefined,
    );
    expect((await readyz(a)).status).toBe(200);
    expect(await holder()).toBe('replica-a');

    await registerWebhook(WEBHOOK, a.webhook, certs.ca, ns.name);
    await waitWebhookActive(ns.name);
    const bad = await kubectlAsync(['apply', '-f', '-'], INVALID_WORKFLOW(ns.name));
    expect(bad.stderr).toContain(INVALID_MESSAGE);
    expect((await kubectlAsync(['apply', '-f', '-'], VALID_WORKFLOW(ns.name))).status).toBe(0);
    // the run check reads the Workflow with the operator's own (RBAC-limited) credentials
    const run = await kubectlAsync(
      ['create', '-f', '-'],
      `apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { generateName: hello-, namespace: ${ns.name} }
spec: { workflow: hello, parameters: [{ name: whom, value: x }] }
`,
    );
    expect(run.stderr).toContain('spec.parameters.whom: unknown parameter "whom"');
    await unregisterWebhook(WEBHOOK);
  });

  it('hands the Lease over within 2 s on SIGTERM (exit 0), and after SIGKILL within the lease duration', async () => {
    await clearLease();
    const a = await startReplica('replica-a');
    await waitFor('a to lead', async () =>
      (await readyz(a)).body.leaderElection === 'leading' ? true : undefined,
    );
    const b = await startReplica('replica-b');
    await waitFor('b to stand by', async () =>
      (await readyz(b)).body.leaderElection === 'standing by (leader: replica-a)' ? true : undefined,
    );
    expect((await readyz(b)).status).toBe(200);

    const termAt = Date.now();
    a.child.kill('SIGTERM');
    expect(await a.exited).toBe(0);
    const bLeads = await waitFor(
      'b to hold the Lease',
      async () => ((await holder()) === 'replica-b' ? Date.now() : undefined),
      { intervalMs: 20 },
    );
    const graceful = bLeads - termAt;
    expect(graceful).toBeLessThan(2_000);

    const c = await startReplica('replica-c');
    await waitFor('c to stand by', async () =>
      (await readyz(c)).body.leaderElection === 'standing by (leader: replica-b)' ? true : undefined,
    );
    const killAt = Date.now();
    b.child.kill('SIGKILL');
    const cLeads = await waitFor(
      'c to hold the Lease',
      async () => ((await holder()) === 'replica-c' ? Date.now() : undefined),
      { intervalMs: 20, timeoutMs: 15_000 },
    );
    const killed = cLeads - killAt;
    expect(killed).toBeGreaterThan(3_000 - 300 - 250);
    expect(killed).toBeLessThan(3_000 + 1_500);
    process.stderr.write(
      `operator process: SIGTERM hand-over ${graceful} ms; SIGKILL takeover ${killed} ms (lease 3 s)\n`,
    );
  });

  it('exits 1 when its Lease is taken by another holder (restart clean rather than act as a second leader)', async () => {
    await clearLease();
    const a = await startReplica('replica-a');
    await waitFor('a to lead', async () =>
      (await readyz(a)).body.leaderElection === 'leading' ? true : undefined,
    );
    const api = testKubeConfig().makeApiClient(CoordinationV1Api);
    const lease = await api.readNamespacedLease({ name: 'meson-operator', namespace: OPERATOR_NAMESPACE });
    lease.spec = {
      ...lease.spec,
      holderIdentity: 'intruder',
      leaseDurationSeconds: 60,
      renewTime: new V1MicroTime(),
    };
    await api.replaceNamespacedLease({ name: 'meson-operator', namespace: OPERATOR_NAMESPACE, body: lease });
    const takenAt = Date.now();
    expect(await a.exited).toBe(1);
    expect(Date.now() - takenAt).toBeLessThan(3_000);
    await clearLease();
  });

  it('runs without leader election when told, and refuses bad flags with exit 2', async () => {
    const solo = await startReplica('solo', ['--leader-elect=false']);
    expect((await readyz(solo)).body).toMatchObject({
      ready: true,
      leaderElection: 'disabled (acting as the only leader)',
    });
    // an API server it cannot reach: alive, but not ready (the Lease was never read)
    const unreachable = join(certs.dir, 'unreachable.kubeconfig');
    writeFileSync(
      unreachable,
      readFileSync(kubeconfig, 'utf8').replace(/server: .*/, 'server: https://127.0.0.1:1'),
    );
    const lost = await startReplica('lost', [`--kubeconfig=${unreachable}`]);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await readyz(lost)).toMatchObject({
      status: 503,
      body: { ready: false, leaderElection: 'pending: the Lease has not been read yet' },
    });
    const bad = spawn(process.execPath, [
      join(ROOT, 'src', 'cli', 'main.ts'),
      'operator',
      '--lease-duration=abc',
    ]);
    expect(await new Promise((r) => bad.on('exit', r))).toBe(2);
  });
});
