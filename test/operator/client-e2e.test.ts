// The client verbs of mesonctl against `mesonctl operator` on the real control plane, both ways
// a cluster user reaches it: the operator's REST API (--rest-listen, the same API and UI as the
// standalone server) and KUBECONFIG (the resources themselves). Step Pods run on KWOK nodes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePorts } from '../cluster/health.ts';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import {
  applyRbac,
  installCrdsServed,
  mesonctl,
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  reconciling,
  spawnOperator,
  useOperatorProcesses,
  userKubeconfig,
} from './helpers.ts';

const ns = useNamespace('client');
const TOKEN = 'operator-client-e2e-token';
let dir = '';
let kubeconfig = '';
const operators = useOperatorProcesses();

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
  dir = mkdtempSync(join(tmpdir(), 'meson-client-e2e-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function operator(
  exitCode?: number,
  extra: string[] = [],
): Promise<{ op: OperatorProcess; rest: string }> {
  const [port] = await freePorts(1);
  const op = await spawnOperator(
    'client-e2e',
    kubeconfig,
    [
      `--namespace=${ns.name}`,
      `--state-namespace=${OPERATOR_NAMESPACE}`,
      '--pod-annotation=kwok.meson.dev/duration=1s',
      ...(exitCode !== undefined ? [`--pod-annotation=kwok.meson.dev/exit-code=${exitCode}`] : []),
      `--rest-listen=127.0.0.1:${port}`,
      ...extra,
    ],
    { MESON_API_TOKEN: TOKEN },
  );
  operators.track(op);
  await reconciling(op);
  return { op, rest: `http://127.0.0.1:${port}` };
}

function cli(args: string[], env: Record<string, string>) {
  return mesonctl(ns.name, args, env, dir);
}

const WORKFLOW = (name: string) => `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata:
  name: ${name}
spec:
  parameters:
    - { name: who, type: string, value: world }
  definition:
    sequence:
      - step: { name: prepare, container: { image: busybox, command: [sh, -c, "echo \${who}"] } }
      - foreach:
          items: range(3)
          as: i
          do: { step: { name: work, container: { image: busybox, command: [sh, -c, "echo \${i}"] } } }
`;

describe('mesonctl client verbs against the operator', () => {
  it('through its REST API: submit --watch to Succeeded, get runs, get run, restart --step', async () => {
    const { rest } = await operator();
    const env = { MESON_SERVER: rest, MESON_API_TOKEN: TOKEN };
    writeFileSync(join(dir, 'rest.yaml'), WORKFLOW('via-rest'));
    const submit = await cli(['submit', 'rest.yaml', '--watch', '-p', 'who=rest'], env);
    expect(submit.code, submit.err + submit.out).toBe(0);
    expect(submit.out).toMatch(/Phase: +Succeeded/);
    expect(submit.out).toMatch(/✔ work\[2\] +Succeeded/);
    const list = JSON.parse((await cli(['get', 'runs', '-o', 'json'], env)).out).items;
    expect(list).toHaveLength(1);
    const name = list[0].metadata.name as string;
    const tree = await cli(['get', 'run', name], env);
    expect(tree.out).toMatch(/✔ prepare +Succeeded/);
    // restart from a step: prepare is reused, the foreach runs again
    const again = await cli(['restart', name, '--step', 'work', '--watch'], env);
    expect(again.code, again.err + again.out).toBe(0);
    const newest = JSON.parse((await cli(['get', 'runs', '-o', 'json'], env)).out).items[0];
    const steps = JSON.parse((await cli(['get', 'run', newest.metadata.name, '-o', 'json'], env)).out).status
      .steps as { id: string; message?: string }[];
    expect(steps.find((s) => s.id === 'prepare')?.message).toBe(`reused from run ${name}`);
    // the web UI is served too, behind the same token for its data
    const ui = await fetch(`${rest}/`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('<html');
    expect((await fetch(`${rest}/api/v1/namespaces/${ns.name}/runs`)).status).toBe(401);
  }, 120_000);

  it('through KUBECONFIG: submit --watch to Succeeded, get run from the shards, stop answers 409 once ended', async () => {
    await operator();
    const env = { MESON_CLIENT: 'kube', KUBECONFIG: inject('kubeconfigPath') };
    writeFileSync(join(dir, 'kube.yaml'), WORKFLOW('via-kube'));
    const submit = await cli(['submit', 'kube.yaml', '--watch'], env);
    expect(submit.code, submit.err + submit.out).toBe(0);
    expect(submit.out).toMatch(/Phase: +Succeeded/);
    const runs = JSON.parse((await cli(['get', 'runs', '-o', 'json'], env)).out).items;
    expect(runs).toHaveLength(1);
    const tree = await cli(['get', 'run', runs[0].metadata.name], env);
    expect(tree.out).toMatch(/✔ work\[1\] +Succeeded/);
    const stop = await cli(['stop', runs[0].metadata.name], env);
    expect(stop.code).toBe(1);
    expect(stop.err).toMatch(/API_CONFLICT/);
  }, 120_000);

  it('a failing step fails submit --watch with exit 1, through KUBECONFIG', async () => {
    await operator(3);
    const env = { MESON_CLIENT: 'kube', KUBECONFIG: inject('kubeconfigPath') };
    writeFileSync(join(dir, 'fail.yaml'), WORKFLOW('fails'));
    const submit = await cli(['submit', 'fail.yaml', '--watch'], env);
    expect(submit.code, submit.err + submit.out).toBe(1);
    expect(submit.out, submit.err).toMatch(/Phase: +Failed/);
  }, 120_000);

  it("sends a workflow's webhook notification when its run succeeds (delivery kept in the cluster)", async () => {
    const got: { event?: string; run?: string }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        got.push(JSON.parse(body));
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    try {
      // loopback is refused by default: this operator allows it for the test's receiver
      await operator(undefined, ['--notify-allow=127.0.0.1/32']);
      const env = { MESON_CLIENT: 'kube', KUBECONFIG: inject('kubeconfigPath') };
      const wf = WORKFLOW('notifies').replace(
        'spec:\n',
        `spec:\n  notifications:\n    - on: [success]\n      webhook: { url: "http://127.0.0.1:${port}/hook" }\n`,
      );
      writeFileSync(join(dir, 'notify.yaml'), wf);
      const submit = await cli(['submit', 'notify.yaml', '--watch'], env);
      expect(submit.code, submit.err + submit.out).toBe(0);
      await waitFor('the notification', async () => (got.length > 0 ? true : undefined), {
        timeoutMs: 20_000,
      });
      expect(JSON.stringify(got[0])).toContain('notifies');
    } finally {
      receiver.close();
    }
  }, 120_000);

  it('a Workflow and its run applied in one file: the run waits for the version, then succeeds', async () => {
    await operator();
    const both = `${WORKFLOW('together').replace('metadata:\n  name: together', `metadata:\n  name: together\n  namespace: ${ns.name}`)}---
apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { name: together-1, namespace: ${ns.name} }
spec: { workflow: together }
`;
    const applied = await kubectlAsync(['apply', '-f', '-'], both);
    expect(applied.status, applied.stderr).toBe(0);
    const env = { MESON_CLIENT: 'kube', KUBECONFIG: inject('kubeconfigPath') };
    await waitFor(
      'together-1 to end',
      async () => {
        const r = await cli(['get', 'run', 'together-1', '-o', 'json'], env);
        const phase = r.code === 0 ? JSON.parse(r.out).status?.phase : undefined;
        return phase === 'Succeeded' || phase === 'Failed' ? phase : undefined;
      },
      { timeoutMs: 60_000 },
    ).then((phase) => expect(phase).toBe('Succeeded'));
  }, 120_000);
});
