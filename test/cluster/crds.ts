import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiextensionsV1Api, type V1CustomResourceDefinition } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { kubectl } from './kubectl.ts';
import { testKubeConfig } from './namespace.ts';
import { waitFor } from './wait.ts';

export const CRD_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../deploy/crds');

/** Every CustomResourceDefinition in the YAML files of `dir` (none when it is missing). */
export function readCrds(dir = CRD_DIR): { file: string; crd: V1CustomResourceDefinition }[] {
  let files: string[] = [];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
  } catch {
    return [];
  }
  return files.sort().flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8'))
      .map((d) => d.toJS() as V1CustomResourceDefinition)
      .filter((d) => d?.kind === 'CustomResourceDefinition')
      .map((crd) => ({ file: join(dir, file), crd })),
  );
}

/**
 * Applies the CRDs of `dir` to the shared test cluster with the built kubectl and waits until
 * each is Established. Idempotent (server-side apply, one field manager), so every test file
 * that needs the CRDs may call it.
 */
export async function installCrds(dir = CRD_DIR): Promise<V1CustomResourceDefinition[]> {
  const crds = readCrds(dir);
  if (crds.length === 0) throw new Error(`no CustomResourceDefinition in ${dir} (npm run generate)`);
  for (const file of new Set(crds.map((c) => c.file))) {
    // Server-side: client-side apply keeps the whole object in an annotation that big CRD
    // schemas overflow.
    const args = ['apply', '--server-side', '--force-conflicts', '--field-manager=meson-tests'];
    const result = kubectl([...args, '-f', file]);
    if (result.status !== 0 || result.stderr !== '') {
      throw new Error(`kubectl apply -f ${file} failed (${result.status}): ${result.stderr}`);
    }
  }
  const api = testKubeConfig().makeApiClient(ApiextensionsV1Api);
  for (const { crd } of crds) {
    const name = crd.metadata?.name ?? '';
    await waitFor(`CRD ${name} to be Established`, async () => {
      const live = await api.readCustomResourceDefinition({ name });
      const established = live.status?.conditions?.some(
        (c) => c.type === 'Established' && c.status === 'True',
      );
      return established ? true : undefined;
    });
  }
  return crds.map((c) => c.crd);
}
