// The admission webhook on a real kube-apiserver: registered with a CA this test makes, called
// by the API server over HTTPS, refusing with the project's own messages.
import { request } from 'node:https';
import { CustomObjectsApi } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { kubeAdmissionLookup, whoAmI } from '../../src/operator/kube.ts';
import { buildWebhookApp } from '../../src/operator/webhook.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import {
  INVALID_MESSAGE,
  INVALID_WORKFLOW,
  installCrdsServed,
  OPERATOR_USER,
  registerWebhook,
  unregisterWebhook,
  userKubeconfig,
  VALID_WORKFLOW,
  type WebhookCerts,
  waitWebhookActive,
  webhookCerts,
} from './helpers.ts';

const NAME = 'meson-admission-test';
const ns = useNamespace('admission');
let certs: WebhookCerts;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  await installCrdsServed();
  certs = webhookCerts();
  // the operator learns who it is from the API server, whatever its credentials (here a client
  // certificate for its service account's name); only that user may write system-owned fields
  const operator = await whoAmI(userKubeconfig().kc);
  expect(operator).toBe(OPERATOR_USER);
  app = await buildWebhookApp({
    lookup: kubeAdmissionLookup(ns.kc),
    policy: { systemUsers: [operator] },
    tls: { cert: certs.cert, key: certs.key },
    bodyLimit: 1024 * 1024,
  });
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await unregisterWebhook(NAME);
  await app?.close();
});
beforeEach(async () => {
  await registerWebhook(NAME, url, certs.ca, ns.name);
  await waitWebhookActive(ns.name);
});
afterEach(async () => {
  await unregisterWebhook(NAME);
});

const run = (namespace: string, parameters: object[]) => `apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata:
  generateName: hello-
  namespace: ${namespace}
spec:
  workflow: hello
  parameters: ${JSON.stringify(parameters)}
`;

describe('admission webhook on a real API server', () => {
  it('refuses `kubectl apply` of an invalid Workflow with the project’s message; a valid one passes', async () => {
    const bad = await kubectlAsync(['apply', '-f', '-'], INVALID_WORKFLOW(ns.name));
    expect(bad.status).toBe(1);
    // kubectl shows a 422 with causes as "The request is invalid: <field>: <message>"
    expect(bad.stderr).toContain(`The request is invalid: ${INVALID_MESSAGE}`);
    expect((await kubectlAsync(['get', 'mwf', 'broken', '-n', ns.name])).status).not.toBe(0);
    const good = await kubectlAsync(['apply', '-f', '-'], VALID_WORKFLOW(ns.name));
    expect(good.stderr).toBe('');
    expect(good.stdout).toContain('workflow.meson.dev/hello created');
    // an update that breaks it is refused too; one that keeps the spec (a label) passes
    const broken = await kubectlAsync(['apply', '-f', '-'], INVALID_WORKFLOW(ns.name, 'hello'));
    expect(broken.stderr).toContain(INVALID_MESSAGE);
    expect((await kubectlAsync(['label', 'mwf', 'hello', '-n', ns.name, 'team=a'])).status).toBe(0);
  });

  it('refuses a WorkflowRun with an undeclared parameter or a mistyped one, and a run of a missing Workflow', async () => {
    const missing = await kubectlAsync(['create', '-f', '-'], run(ns.name, []));
    expect(missing.stderr).toContain(`spec.workflow: workflow "${ns.name}/hello" not found`);
    expect((await kubectlAsync(['apply', '-f', '-'], VALID_WORKFLOW(ns.name))).status).toBe(0);
    const undeclared = await kubectlAsync(
      ['create', '-f', '-'],
      run(ns.name, [{ name: 'whom', value: 'x' }]),
    );
    expect(undeclared.status).toBe(1);
    expect(undeclared.stderr).toContain(
      'spec.parameters.whom: unknown parameter "whom": workflow "hello" version 1 declares dateint, who',
    );
    const mistyped = await kubectlAsync(
      ['create', '-f', '-'],
      run(ns.name, [{ name: 'dateint', value: 'today' }]),
    );
    expect(mistyped.stderr).toMatch(/spec\.parameters\.dateint: /);
    const ok = await kubectlAsync(['create', '-f', '-'], run(ns.name, [{ name: 'who', value: 'you' }]));
    expect(ok.stderr).toBe('');
    expect(ok.stdout).toMatch(/workflowrun\.meson\.dev\/hello-\w+ created/);
  });

  it('refuses a user who forges a cron run (TRIGGER) or a system label, with 403 and the field', async () => {
    expect((await kubectlAsync(['apply', '-f', '-'], VALID_WORKFLOW(ns.name))).status).toBe(0);
    const forged = `apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata:
  generateName: hello-
  namespace: ${ns.name}
spec:
  workflow: hello
  initiator: { type: cron, scheduledTime: "2020-01-01T00:00:00Z" }
`;
    const res = await kubectlAsync(['create', '-f', '-'], forged);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/forbidden|Forbidden/);
    expect(res.stderr).toContain('spec.initiator.type');
    const label = await kubectlAsync(
      ['create', '-f', '-'],
      forged
        .replace('  initiator: { type: cron, scheduledTime: "2020-01-01T00:00:00Z" }\n', '')
        .replace('  generateName: hello-', '  generateName: hello-\n  labels: { meson.dev/backfill: bf-1 }'),
    );
    expect(label.status).toBe(1);
    expect(label.stderr).toContain(
      'metadata.labels["meson.dev/backfill"]: labels under meson.dev/ are set by the system',
    );
  });

  it('never stands in the way of status writes (the controller’s) or deletes', async () => {
    expect((await kubectlAsync(['apply', '-f', '-'], VALID_WORKFLOW(ns.name))).status).toBe(0);
    const custom = ns.kc.makeApiClient(CustomObjectsApi);
    const wf = (await custom.getNamespacedCustomObject({
      group: 'meson.dev',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'workflows',
      name: 'hello',
    })) as { status?: unknown };
    await custom.replaceNamespacedCustomObjectStatus({
      group: 'meson.dev',
      version: 'v1alpha1',
      namespace: ns.name,
      plural: 'workflows',
      name: 'hello',
      body: { ...wf, status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Test' }] } },
    });
    expect((await kubectlAsync(['delete', 'mwf', 'hello', '-n', ns.name])).status).toBe(0);
  });

  it('when the webhook is down: Workflows and runs are refused (Fail), DataArtifacts pass (Ignore)', async () => {
    await app.close();
    try {
      const wf = await kubectlAsync(['apply', '-f', '-'], VALID_WORKFLOW(ns.name));
      expect(wf.status).toBe(1);
      expect(wf.stderr).toMatch(/failed calling webhook "workflows\.meson\.dev"/);
      const artifact = await kubectlAsync(
        ['apply', '-f', '-'],
        `apiVersion: meson.dev/v1alpha1
kind: DataArtifact
metadata: { name: views-us, namespace: ${ns.name} }
spec: { name: views, partition: { country: US } }
`,
      );
      expect(artifact.stderr).toBe('');
      expect(artifact.status).toBe(0);
    } finally {
      app = await buildWebhookApp({
        lookup: kubeAdmissionLookup(ns.kc),
        tls: { cert: certs.cert, key: certs.key },
        bodyLimit: 1024 * 1024,
      });
      await app.listen({ host: '127.0.0.1', port: Number(new URL(url).port) });
    }
  });

  it('answers hostile bodies on its TLS port with 400/413 and keeps serving', async () => {
    const post = (body: string | Buffer) =>
      new Promise<number>((resolve, reject) => {
        const req = request(
          `${url}/validate`,
          { method: 'POST', ca: certs.ca, headers: { 'content-type': 'application/json' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', (err) => {
          // the server may close the connection while a huge body is still being sent
          if (
            (err as NodeJS.ErrnoException).code === 'EPIPE' ||
            (err as NodeJS.ErrnoException).code === 'ECONNRESET'
          )
            resolve(413);
          else reject(err);
        });
        req.end(body);
      });
    expect(await post('{"garbage')).toBe(400);
    expect(await post(Buffer.alloc(3 * 1024 * 1024, 'x'))).toBe(413);
    expect(await post(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }))).toBe(
      400,
    );
    // and the API server still gets answers
    const bad = await kubectlAsync(['apply', '-f', '-'], INVALID_WORKFLOW(ns.name));
    expect(bad.stderr).toContain(INVALID_MESSAGE);
  });
});
