import {
  ApiextensionsV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { CRD_DIR, installCrds, readCrds } from '../cluster/crds.ts';
import { kubectl } from '../cluster/kubectl.ts';
import { testKubeConfig, useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';

const GROUP = 'meson.dev';
const VERSION = 'v1alpha1';

// the user-facing kinds (category meson); internal ones (WorkflowRunShard) are the store's
const crds = readCrds().filter(({ crd }) => crd.spec.names.categories?.includes('meson'));
const ns = useNamespace('crds');
const custom = ns.kc.makeApiClient(CustomObjectsApi);

function createWorkflow(name: string, spec: object): Promise<object> {
  return custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns.name,
    plural: 'workflows',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Workflow', metadata: { name }, spec },
  });
}

const definition = { step: { name: 'hello', shell: { script: 'echo hello' } } };

describe('deploy/crds on a real kube-apiserver', () => {
  beforeAll(async () => {
    expect(crds.length, `no CustomResourceDefinition in ${CRD_DIR} (npm run generate)`).toBeGreaterThan(0);
    await installCrds();
  });

  it('serves the four kinds, Established, with their short names', async () => {
    const api = testKubeConfig().makeApiClient(ApiextensionsV1Api);
    const live = await Promise.all(
      crds.map(({ crd }) => api.readCustomResourceDefinition({ name: crd.metadata?.name ?? '' })),
    );
    for (const crd of live) {
      const status = (type: string) => crd.status?.conditions?.find((c) => c.type === type)?.status;
      expect([crd.metadata?.name, status('Established'), status('NamesAccepted')]).toEqual([
        crd.metadata?.name,
        'True',
        'True',
      ]);
    }
    const byKind = Object.fromEntries(
      live.map((crd) => [crd.spec.names.kind, crd.status?.acceptedNames?.shortNames]),
    );
    expect(byKind).toMatchObject({
      Workflow: ['mwf'],
      WorkflowVersion: ['mwfv'],
      WorkflowRun: ['mwfr'],
      DataArtifact: ['da'],
    });
  });

  it('lists every kind with `kubectl get mwf,mwfv,mwfr,da` and its printer columns', async () => {
    const objects: Record<string, { plural: string; body: object }> = {
      Workflow: { plural: 'workflows', body: { metadata: { name: 'wf' }, spec: { definition } } },
      WorkflowVersion: {
        plural: 'workflowversions',
        body: {
          metadata: { name: 'wf-v1' },
          spec: { workflow: 'wf', version: 1, specHash: 'abc123', definition },
        },
      },
      WorkflowRun: {
        plural: 'workflowruns',
        body: { metadata: { name: 'wf-run1' }, spec: { workflow: 'wf' } },
      },
      DataArtifact: {
        plural: 'dataartifacts',
        body: { metadata: { name: 'views-1' }, spec: { name: 'views', partition: { country: 'US' } } },
      },
    };
    for (const [kind, { plural, body }] of Object.entries(objects)) {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns.name,
        plural,
        body: { apiVersion: `${GROUP}/${VERSION}`, kind, ...body },
      });
    }
    // Discovery of freshly established CRDs can lag by a moment: retry until kubectl knows them.
    const result = await waitFor(
      'kubectl get mwf,mwfv,mwfr,da',
      async () => {
        const r = kubectl(['get', 'mwf,mwfv,mwfr,da', '-n', ns.name]);
        return r.status === 0 ? r : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    for (const { crd } of crds) {
      const columns = (crd.spec.versions.find((v) => v.name === VERSION)?.additionalPrinterColumns ?? [])
        .filter((c) => !c.priority)
        .map((c) => c.name.toUpperCase());
      expect(columns.length, `${crd.spec.names.kind} has printer columns`).toBeGreaterThan(0);
      const header = result.stdout
        .split('\n')
        .find((line) => line.startsWith('NAME') && columns.every((c) => line.includes(c)));
      expect(header, `a header with ${columns.join(', ')} in:\n${result.stdout}`).toBeDefined();
    }
    for (const name of [
      'workflow.meson.dev/wf',
      'workflowversion.meson.dev/wf-v1',
      'workflowrun.meson.dev/wf-run1',
      'dataartifact.meson.dev/views-1',
    ]) {
      expect(result.stdout).toContain(name);
    }
  });

  it('updates status through the status subresource with a merge patch', async () => {
    await createWorkflow('wf', { definition });
    // client-node 2 sends PATCH bodies as JSON Patch unless told otherwise.
    await custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: ns.name,
        plural: 'workflows',
        name: 'wf',
        body: { status: { latestVersion: 7 } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const result = kubectl(['get', 'mwf', 'wf', '-n', ns.name, '--no-headers']);
    expect(result.stdout.trim().split(/\s+/).slice(0, 2)).toEqual(['wf', '7']);
  });

  it('rejects an invalid Workflow by the CRD schema (server-side validation)', async () => {
    const error = await createWorkflow('bad', { definition: 'not a node', parameters: 'not a list' }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; body?: string },
    );
    expect(error?.code).toBe(422);
    expect(String(error?.body)).toContain('spec.definition');
    expect(String(error?.body)).toContain('spec.parameters');
    // Nothing was stored.
    const list = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns.name,
      plural: 'workflows',
    })) as { items: unknown[] };
    expect(list.items).toEqual([]);
  });
});
