// `npm run generate`: writes deploy/crds/*.yaml and docs/api-reference.md from the zod schemas in
// src/crds (one source of truth). Output is byte-stable; src/crds/crd.test.ts fails when stale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crdFiles } from '../src/crds/crd.ts';
import { apiReferenceMarkdown } from '../src/crds/docs.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'deploy', 'crds');
mkdirSync(out, { recursive: true });
for (const { file, yaml } of crdFiles()) {
  writeFileSync(join(out, file), yaml);
  console.log(`wrote deploy/crds/${file}`);
}
mkdirSync(join(root, 'docs'), { recursive: true });
writeFileSync(join(root, 'docs', 'api-reference.md'), apiReferenceMarkdown());
console.log('wrote docs/api-reference.md');
