// `npm run generate`: writes deploy/crds/*.yaml (and the Helm chart's copies in charts/meson/crds,
// kept identical by test/helm/chart.test.ts) and docs/api-reference.md from the zod schemas in
// src/crds (one source of truth). Output is byte-stable; src/crds/crd.test.ts fails when stale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crdFiles } from '../src/crds/crd.ts';
import { apiReferenceMarkdown } from '../src/crds/docs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const dir of ['deploy/crds', 'charts/meson/crds']) {
  const out = join(root, dir);
  mkdirSync(out, { recursive: true });
  for (const { file, yaml } of crdFiles()) {
    writeFileSync(join(out, file), yaml);
    console.log(`wrote ${dir}/${file}`);
  }
}
mkdirSync(join(root, 'docs'), { recursive: true });
writeFileSync(join(root, 'docs', 'api-reference.md'), apiReferenceMarkdown());
console.log('wrote docs/api-reference.md');
