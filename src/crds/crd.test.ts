import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CRD_KINDS, crdFiles, crdObject, NODE_DEPTH, toStructural } from './crd.ts';
import { apiReferenceMarkdown } from './docs.ts';

const ROOT = join(import.meta.dirname, '..', '..');
type Json = Record<string, unknown>;

describe('generated files', () => {
  it('deploy/crds is current (run `npm run generate` after changing src/crds)', () => {
    for (const { file, yaml } of crdFiles()) {
      const onDisk = readFileSync(join(ROOT, 'deploy', 'crds', file), 'utf8');
      expect(onDisk, `deploy/crds/${file} is stale: run npm run generate`).toBe(yaml);
    }
  });

  it('docs/api-reference.md is current', () => {
    const onDisk = readFileSync(join(ROOT, 'docs', 'api-reference.md'), 'utf8');
    expect(onDisk, 'docs/api-reference.md is stale: run npm run generate').toBe(apiReferenceMarkdown());
  });

  it('reads the same as YAML 1.1, the dialect of kubectl (a plain `on` would be true there)', () => {
    for (const { yaml } of crdFiles()) expect(parse(yaml, { version: '1.1' })).toEqual(parse(yaml));
  });

  it('is byte-stable with sorted keys', () => {
    expect(crdFiles()).toEqual(crdFiles());
    const sorted = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(sorted);
      else if (v && typeof v === 'object') {
        const keys = Object.keys(v);
        expect(keys).toEqual([...keys].sort());
        Object.values(v).forEach(sorted);
      }
    };
    for (const { yaml } of crdFiles()) sorted(parse(yaml));
  });
});

/** Fields where the API is free-form (any JSON below them), by property name. */
const FREE_FORM_FIELDS = new Set([
  'value', // parameter values
  'partition', // artifact partitions
  'conf', // spark conf
  'outputs', // step instance output parameters (status)
  'parameters', // resolved parameters (status)
  'engineState', // engine bookkeeping (status)
  'cpus', // quantities: number or string
  'memory',
  'gpus',
  'disk',
]);

interface Finding {
  path: string;
  problem: string;
}

/** Kubernetes' structural schema rules (apiextensions v1), as far as they apply to our schemas. */
function structuralViolations(schema: Json, path = ''): Finding[] {
  const out: Finding[] = [];
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  const intOrString = schema['x-kubernetes-int-or-string'] === true;
  if (typeof schema.type !== 'string' && !preserve && !intOrString) out.push({ path, problem: 'no type' });
  for (const k of ['$ref', 'definitions', '$defs', 'allOf', 'not', 'const'])
    if (k in schema) out.push({ path, problem: `uses ${k}` });
  // anyOf/oneOf may only constrain values here (e.g. which keys are required), never declare types.
  for (const k of ['anyOf', 'oneOf'])
    for (const branch of (schema[k] as Json[] | undefined) ?? [])
      if (Object.keys(branch).some((key) => key !== 'required'))
        out.push({ path, problem: `uses ${k} with ${Object.keys(branch).join(', ')}` });
  if ('properties' in schema && 'additionalProperties' in schema)
    out.push({ path, problem: 'properties and additionalProperties together' });
  if (schema.additionalProperties === false) out.push({ path, problem: 'additionalProperties: false' });
  if (schema.type === 'array' && !schema.items) out.push({ path, problem: 'array without items' });
  if (schema['x-kubernetes-list-type'] === 'map') {
    const required = ((schema.items as Json | undefined)?.required as string[] | undefined) ?? [];
    for (const key of (schema['x-kubernetes-list-map-keys'] as string[] | undefined) ?? [])
      if (!required.includes(key)) out.push({ path, problem: `list-map key ${key} is not required` });
  }
  if (preserve) {
    const field = path.split('.').pop()!.replace(/\[\]$/, '');
    const depthCut = typeof schema.description === 'string' && schema.description.includes('nested deeper');
    if (!FREE_FORM_FIELDS.has(field) && !depthCut && path !== '')
      out.push({ path, problem: 'x-kubernetes-preserve-unknown-fields outside a free-form field' });
  }
  if (schema.properties) {
    for (const [k, v] of Object.entries(schema.properties as Json))
      out.push(...structuralViolations(v as Json, path ? `${path}.${k}` : k));
  }
  if (schema.items) out.push(...structuralViolations(schema.items as Json, `${path}[]`));
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object')
    out.push(...structuralViolations(schema.additionalProperties as Json, `${path}{}`));
  return out;
}

function openApi(kind: string): Json {
  const k = CRD_KINDS.find((c) => c.kind === kind)!;
  const spec = crdObject(k).spec as Json;
  return ((spec.versions as Json[])[0]!.schema as Json).openAPIV3Schema as Json;
}

describe('CRDs', () => {
  it.each(CRD_KINDS.map((k) => k.kind))('%s has a structural openAPIV3Schema', (kind) => {
    expect(structuralViolations(openApi(kind))).toEqual([]);
  });

  it('the checker catches what Kubernetes rejects', () => {
    expect(
      structuralViolations({
        type: 'object',
        properties: {
          a: { anyOf: [{ type: 'string' }, { type: 'number' }] },
          b: { $ref: '#/definitions/x' },
          c: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          d: { type: 'array' },
          e: {
            type: 'array',
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['id'],
            items: { type: 'object', properties: { id: { type: 'string' } } },
          },
        },
      }).map((f) => `${f.path}: ${f.problem}`),
    ).toEqual([
      'a: no type',
      'a: uses anyOf with type',
      'a: uses anyOf with type',
      'b: no type',
      'b: uses $ref',
      'c: x-kubernetes-preserve-unknown-fields outside a free-form field',
      'd: array without items',
      'e: list-map key id is not required',
    ]);
  });

  it('keys conditions by type and parameters by name (list-type map)', () => {
    const spec = (openApi('Workflow').properties as Json).spec as Json;
    const params = (spec.properties as Json).parameters as Json;
    expect(params['x-kubernetes-list-map-keys']).toEqual(['name']);
    const status = (openApi('WorkflowRun').properties as Json).status as Json;
    expect((status.properties as Json).conditions).toMatchObject({
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    });
  });

  it('lets the API server enforce exactly one step type (oneOf of required keys)', () => {
    const spec = (openApi('Workflow').properties as Json).spec as Json;
    const definition = (spec.properties as Json).definition as Json;
    const step = (definition.properties as Json).step as Json;
    expect(step.oneOf).toEqual(
      ['shell', 'container', 'spark', 'copy', 'subworkflow', 'noop'].map((k) => ({ required: [k] })),
    );
  });

  it('describes every spec and every definition block for kubectl explain', () => {
    for (const kind of ['Workflow', 'WorkflowVersion', 'WorkflowRun', 'DataArtifact']) {
      const spec = (openApi(kind).properties as Json).spec as Json;
      expect(spec.description, `${kind}.spec`).toEqual(expect.any(String));
    }
    const spec = (openApi('Workflow').properties as Json).spec as Json;
    const definition = (spec.properties as Json).definition as Json;
    for (const [key, field] of Object.entries(definition.properties as Json))
      expect((field as Json).description, `workflow.spec.definition.${key}`).toEqual(expect.any(String));
  });

  it('keeps metadata untyped and requires spec', () => {
    const s = openApi('Workflow');
    expect((s.properties as Json).metadata).toEqual({ type: 'object' });
    expect(s.required).toEqual(['spec']);
  });

  it('expands the recursive definition tree NODE_DEPTH levels and keeps deeper nodes free-form', () => {
    let node = ((openApi('Workflow').properties as Json).spec as Json).properties as Json;
    let current = node.definition as Json;
    for (let level = 1; level < NODE_DEPTH; level++) {
      expect(current).toMatchObject({ type: 'object', minProperties: 1, maxProperties: 1 });
      expect(Object.keys(current.properties as Json)).toEqual(
        expect.arrayContaining(['step', 'sequence', 'parallel', 'or', 'xor', 'loop', 'foreach']),
      );
      node = current.properties as Json;
      current = (node.sequence as Json).items as Json;
    }
    const deepest = (current.properties as Json).sequence as Json;
    expect(deepest.items).toMatchObject({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true });
    expect(((current.properties as Json).step as Json).properties).toHaveProperty('shell');
  });

  it('fits in a client-side kubectl apply (last-applied annotation under 256 KiB)', () => {
    for (const k of CRD_KINDS) expect(JSON.stringify(crdObject(k)).length).toBeLessThan(256 * 1024);
  });

  it('has names, short names, category meson, status subresource and printer columns that resolve', () => {
    const expected: Record<string, { short: string; columns: string[] }> = {
      Workflow: { short: 'mwf', columns: ['Latest', 'Active', 'Last Run', 'Age'] },
      WorkflowVersion: { short: 'mwfv', columns: ['Workflow', 'Version', 'Hash', 'Age'] },
      WorkflowRun: {
        short: 'mwfr',
        columns: ['Workflow', 'Version', 'Phase', 'Steps', 'Succeeded', 'Failed', 'Started', 'Duration'],
      },
      DataArtifact: { short: 'da', columns: ['Name', 'Partition', 'Announced'] },
    };
    for (const k of CRD_KINDS) {
      const crd = crdObject(k);
      const spec = crd.spec as Json;
      const names = spec.names as Json;
      expect(crd.metadata).toEqual({ name: `${k.plural}.meson.dev` });
      expect(spec.scope).toBe('Namespaced');
      expect(names.shortNames).toEqual([expected[k.kind]!.short]);
      expect(names.categories).toEqual(['meson']);
      const version = (spec.versions as Json[])[0]!;
      expect(version).toMatchObject({
        name: 'v1alpha1',
        served: true,
        storage: true,
        subresources: { status: {} },
      });
      const columns = version.additionalPrinterColumns as { name: string; jsonPath: string }[];
      expect(columns.map((c) => c.name)).toEqual(expected[k.kind]!.columns);
      const schema = openApi(k.kind);
      for (const c of columns) {
        if (c.jsonPath.startsWith('.metadata.')) continue;
        let s: Json | undefined = schema;
        for (const seg of c.jsonPath.slice(1).split('.'))
          s = (s?.properties as Json | undefined)?.[seg] as Json;
        expect(s, `${k.kind} column ${c.name}: ${c.jsonPath} not in the schema`).toBeDefined();
      }
    }
  });
});

describe('toStructural', () => {
  it('inlines references, drops additionalProperties: false and marks free-form values', () => {
    expect(
      toStructural({
        type: 'object',
        properties: {
          a: { allOf: [{ $ref: '#/definitions/A' }], description: 'an A' },
          f: { 'x-meson-free-form': true, type: 'object', additionalProperties: {}, description: 'free' },
        },
        additionalProperties: false,
        definitions: { A: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 } },
      }),
    ).toEqual({
      type: 'object',
      properties: {
        a: { type: 'integer', description: 'an A' },
        f: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true, description: 'free' },
      },
    });
  });
});
