// The client verbs of mesonctl through a kubeconfig (--kubeconfig), on a real kube-apiserver:
// what they write to the custom resources, and what they read back from runs and their shards
// as the operator's store writes them (KubernetesStore, not hand-made objects).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../src/cli/cli.ts';
import { KubernetesStore } from '../../src/store/kubernetes.ts';
import { installCrds } from '../cluster/crds.ts';
import { useNamespace } from '../cluster/namespace.ts';

const ns = useNamespace('kubecli');
const G = { group: 'meson.dev', version: 'v1alpha1' };
let dir = '';

beforeAll(async () => {
  await installCrds();
  dir = mkdtempSync(join(tmpdir(), 'meson-kube-cli-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], stdin = '') {
  const out: string[] = [];
  const err: string[] = [];
  const input = new PassThrough();
  input.end(stdin);
  const code = await runCli([...args, '--kubeconfig', inject('kubeconfigPath'), '-n', ns.name], {
    stdout: (s) => void out.push(s),
    stderr: (s) => void err.push(s),
    stdin: input,
    cwd: dir,
    env: {},
  });
  return { code, out: out.join(''), err: err.join('') };
}

const WORKFLOW = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata:
  name: etl
spec:
  definition:
    sequence:
      - step: { name: extract, shell: { script: echo e } }
      - step: { name: load, shell: { script: echo l } }
`;

function custom() {
  return ns.kc.makeApiClient(CustomObjectsApi);
}

async function createRun(name: string, phase?: string, initiator = 'manual') {
  const c = custom();
  const run = (await c.createNamespacedCustomObject({
    ...G,
    plural: 'workflowruns',
    namespace: ns.name,
    body: {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'WorkflowRun',
      metadata: { name, labels: { 'meson.dev/workflow': 'etl' } },
      spec: { workflow: 'etl', initiator: { type: initiator } },
    },
  })) as { metadata: { resourceVersion: string } };
  if (phase) {
    await c.replaceNamespacedCustomObjectStatus({
      ...G,
      plural: 'workflowruns',
      namespace: ns.name,
      name,
      body: { ...run, status: { phase } },
    });
  }
}

describe('mesonctl client verbs with --kubeconfig', () => {
  it('submit creates, then replaces, the Workflow; suspend and resume set spec.suspend', async () => {
    writeFileSync(join(dir, 'etl.yaml'), WORKFLOW);
    const first = await cli(['submit', 'etl.yaml', '--no-run']);
    expect(first.code, first.err).toBe(0);
    expect(first.err).toContain(`workflow ${ns.name}/etl created`);
    const again = await cli(['submit', '-', '--no-run'], WORKFLOW.replace('echo l', 'echo load'));
    expect(again.code, again.err).toBe(0);
    expect(again.err).toContain(`workflow ${ns.name}/etl applied`);
    const get = () =>
      custom().getNamespacedCustomObject({
        ...G,
        plural: 'workflows',
        namespace: ns.name,
        name: 'etl',
      }) as Promise<{
        spec: { suspend?: boolean; definition: { sequence: { step: { shell: { script: string } } }[] } };
      }>;
    expect((await get()).spec.definition.sequence[1]!.step.shell.script).toBe('echo load');
    expect((await cli(['suspend', 'etl'])).out).toBe(`workflow ${ns.name}/etl: suspended\n`);
    expect((await get()).spec.suspend).toBe(true);
    expect((await cli(['resume', 'etl'])).code).toBe(0);
    expect((await get()).spec.suspend).toBe(false);
    const missing = await cli(['suspend', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/\[API_NOT_FOUND\]/);
  });

  it('get runs lists newest first with filters and pages; get run reads the steps from the shards', async () => {
    await createRun('etl-a', 'Succeeded');
    await new Promise((r) => setTimeout(r, 1100)); // creationTimestamp has a resolution of 1 s
    await createRun('etl-b', 'Failed');
    await new Promise((r) => setTimeout(r, 1100));
    await createRun('etl-c', 'Running', 'api');
    const list = await cli(['get', 'runs', '-o', 'json']);
    expect(list.code, list.err).toBe(0);
    const names = (o: string) =>
      (JSON.parse(o).items as { metadata: { name: string } }[]).map((r) => r.metadata.name);
    expect(names(list.out)).toEqual(['etl-c', 'etl-b', 'etl-a']);
    expect(names((await cli(['get', 'runs', '--phase', 'Failed', '-o', 'json'])).out)).toEqual(['etl-b']);
    expect(names((await cli(['get', 'runs', '--initiator', 'api', '-o', 'json'])).out)).toEqual(['etl-c']);
    expect(names((await cli(['get', 'runs', '--limit', '2', '-o', 'json'])).out)).toEqual(['etl-c', 'etl-b']);
    // --all follows the client's continue tokens page by page
    expect(names((await cli(['get', 'runs', '--limit', '1', '--all', '-o', 'json'])).out)).toEqual([
      'etl-c',
      'etl-b',
      'etl-a',
    ]);
    expect((await cli(['get', 'runs', '--phase', 'failed'])).code).toBe(1);

    // the operator's store writes step instances to shards: get run shows them as a tree
    const store = await KubernetesStore.open({
      kubeConfig: ns.kc,
      namespaces: [ns.name],
      stateNamespace: ns.name,
    });
    try {
      await store.transaction((w) =>
        w.putStepInstances(
          ['extract', 'load'].map((id, i) => ({
            namespace: ns.name,
            run: 'etl-b',
            id,
            phase: i === 0 ? 'Succeeded' : 'Failed',
            data: { id, step: id, phase: i === 0 ? 'Succeeded' : 'Failed', attempts: 1 },
          })),
        ),
      );
    } finally {
      await store.close();
    }
    const tree = await cli(['get', 'run', 'etl-b']);
    expect(tree.code, tree.err).toBe(0);
    expect(tree.out).toMatch(/✔ extract +Succeeded +1/);
    expect(tree.out).toMatch(/✖ load +Failed +1/);
  });

  it('stop sets spec.stop on a running run and answers 409 on an ended one; restart checks the version', async () => {
    await createRun('etl-r', 'Running');
    await createRun('etl-s', 'Succeeded');
    const stop = await cli(['stop', 'etl-r']);
    expect(stop.code, stop.err).toBe(0);
    const r = (await custom().getNamespacedCustomObject({
      ...G,
      plural: 'workflowruns',
      namespace: ns.name,
      name: 'etl-r',
    })) as { spec: { stop?: boolean } };
    expect(r.spec.stop).toBe(true);
    const ended = await cli(['stop', 'etl-s']);
    expect(ended.code).toBe(1);
    expect(ended.err).toMatch(/already ended .*\[API_CONFLICT\]/);
    // no Workflow etl in this namespace: the restart is refused before anything is created
    const restart = await cli(['restart', 'etl-s', '--step', 'load']);
    expect(restart.code).toBe(1);
    expect(restart.err).toMatch(/\[API_NOT_FOUND\]/);
    const running = await cli(['restart', 'etl-r']);
    expect(running.err).toMatch(/only a Failed or Stopped run can be restarted from failed/);
    expect(
      (await cli(['backfill', 'etl', '--param', 'd', '--from', '20240101', '--to', '20240102'])).err,
    ).toMatch(/CLI_UNSUPPORTED/);
    expect((await cli(['get', 'runs', '--server', 'http://127.0.0.1:1'])).code).toBe(2);
  });
});
