#!/usr/bin/env node
// Entry point for `mesonctl`. Runs the compiled CLI when `npm run build` has produced it,
// otherwise the TypeScript source directly (Node >= 22.18 strips types natively).
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
await import(existsSync(compiled) ? compiled.href : source.href);
