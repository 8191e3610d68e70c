// Every example is kept twice: the YAML users apply and the DSL program it is synthesised
// from. These tests keep the two identical byte for byte, keep the set valid, and keep it
// covering every feature of the API (the examples double as the feature tour).
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { crossDocumentIssues, validateManifests } from '../src/crds/validate.ts';
import { collectWorkflows, synthAll, toYaml } from '../src/dsl/index.ts';

const dir = import.meta.dirname;
const root = resolve(dir, '..');
const files = readdirSync(dir).sort();
const programs = files.filter((f) => f.endsWith('.workflow.ts'));
const manifests = files.filter((f) => f.endsWith('.yaml'));
const twinOf = (program: string) => program.replace(/\.workflow\.ts$/, '.yaml');
const regenerate = (program: string) =>
  `node src/cli/main.ts synth examples/${program} > examples/${twinOf(program)}`;

describe('examples: each YAML file is what its DSL twin synthesises', () => {
  it('pairs every YAML file with a DSL program and the other way round', () => {
    expect(programs.length).toBeGreaterThanOrEqual(8);
    expect(manifests.sort()).toEqual(programs.map(twinOf).sort());
  });

  for (const program of programs) {
    it(program, async () => {
      const module = await import(pathToFileURL(join(dir, program)).href);
      const synthesised = toYaml(synthAll(collectWorkflows(module, program)));
      const committed = readFileSync(join(dir, twinOf(program)), 'utf8');
      expect(synthesised, `examples/${twinOf(program)} is stale; run: ${regenerate(program)}`).toBe(
        committed,
      );
    });
  }

  it('synthesises the same bytes under plain Node (type stripping, not the test transform)', async () => {
    const node = process.execPath;
    const { stdout } = await promisify(execFile)(
      node,
      ['src/cli/main.ts', 'synth', ...programs.map((p) => `examples/${p}`)],
      { cwd: root, maxBuffer: 16 << 20 },
    );
    const committed = programs.map((p) => readFileSync(join(dir, twinOf(p)), 'utf8')).join('---\n');
    expect(stdout).toBe(committed);
  });
});

describe('examples: valid and complete', () => {
  const texts = manifests.map((f) => ({ file: f, text: readFileSync(join(dir, f), 'utf8') }));
  const docs = texts.flatMap(({ text }) => parseAll(text));

  it('every document is valid', () => {
    for (const { file, text } of texts) expect(validateManifests(text, file).issues, file).toEqual([]);
  });

  it('subworkflow steps pass only parameters their child declares, and every child exists', () => {
    expect([...crossDocumentIssues(docs).values()].flat()).toEqual([]);
    const names = new Set(docs.map((d) => d.metadata.name));
    for (const child of collect(docs, 'subworkflow'))
      expect(names).toContain((child as { workflow: string }).workflow);
  });

  it('together use every block, every step type and every workflow feature', () => {
    const used = (key: string) => collect(docs, key).length;
    for (const block of ['sequence', 'parallel', 'or', 'xor', 'loop', 'foreach'])
      expect(used(block), block).toBeGreaterThan(0);
    for (const type of ['shell', 'container', 'spark', 'copy', 'subworkflow', 'noop'])
      expect(used(type), type).toBeGreaterThan(0);
    for (const field of [
      'inputs',
      'outputs',
      'resources',
      'constraints',
      'retry',
      'timeoutSeconds',
      'inputsTimeoutSeconds',
      'priority',
    ])
      expect(used(field), field).toBeGreaterThan(0);
    const specs = docs.map((d) => d.spec);
    expect(specs.some((s) => s.triggers?.cron)).toBe(true);
    expect(specs.some((s) => s.triggers?.artifacts)).toBe(true);
    expect(specs.some((s) => s.notifications)).toBe(true);
    expect(new Set(specs.map((s) => s.concurrency?.policy).filter(Boolean))).toEqual(
      new Set(['queue', 'skip', 'replace']),
    );
    expect(collect(docs, 'otherwise').length).toBeGreaterThan(0);
  });

  it('stay calm when `npm start` loads them: no trigger fires, no input is awaited forever', () => {
    for (const d of docs) {
      if (d.spec.triggers) expect(d.spec.suspend, `${d.metadata.name}: spec.suspend`).toBe(true);
      for (const step of collect([d], 'step') as { name: string; inputs?: unknown[] }[])
        if (step.inputs)
          expect(step, `${d.metadata.name}/${step.name}: inputsTimeoutSeconds`).toHaveProperty(
            'inputsTimeoutSeconds',
          );
    }
  });

  it('artifact-triggered runs take their date from the triggering partition', () => {
    for (const d of docs.filter((x) => x.spec.triggers?.artifacts)) {
      const dateint = d.spec.parameters.find((p: { name: string }) => p.name === 'dateint');
      expect(dateint?.expression, d.metadata.name).toContain('TRIGGER.artifacts');
    }
  });

  it('reports output parameters the way the executor protocol reads them', () => {
    const scripts = collect(docs, 'shell').map((s) => (s as { script: string }).script);
    expect(scripts.some((s) => s.includes('>> "$MESON_OUTPUTS"'))).toBe(true);
    // `${...}` is Meson's interpolation; a shell parameter expansion like ${HOME:-x} would be
    // an expression error, so the examples never use one
    for (const script of scripts) expect(script).not.toMatch(/\$\{[A-Za-z_]+:[-=?+]/);
  });
});

// biome-ignore lint/suspicious/noExplicitAny: YAML documents are walked structurally
type Doc = any;

function parseAll(text: string): Doc[] {
  return parseAllDocuments(text).map((d) => d.toJS());
}

/** Every value under `key` anywhere in the documents. */
function collect(docs: Doc[], key: string): unknown[] {
  const out: unknown[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        if (k === key) out.push(v);
        visit(v);
      }
    }
  };
  docs.forEach(visit);
  return out;
}
