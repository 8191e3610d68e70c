#!/usr/bin/env node
// Entry point for `mesonctl`. Runs the compiled CLI when `npm run build` has produced it,
// otherwise the TypeScript source directly (Node >= 22.18 strips types natively).
import { existsSync } from 'node:fs';

const [major, minor] = process.versions.node.split('.').map(Number);
const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
const fromSource = !existsSync(compiled);
if (fromSource && (major < 22 || (major === 22 && minor < 18))) {
  process.stderr.write(
    `mesonctl: needs Node.js >= 22.18 to run from source (this is ${process.version}); ` +
      'use `npx mesonctl` or `npm run mesonctl --` in the repository (they run the Node 24 that npm installs), ' +
      'or run `npm run build` first\n',
  );
  process.exit(2);
}
await import(fromSource ? source.href : compiled.href);
