import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Workflow, type WorkflowVersion, WorkflowVersionSchema } from '../crds/index.ts';
import {
  canonicalJson,
  nextVersion,
  resolveRunVersion,
  specHash,
  VersionError,
  versionStatus,
} from './index.ts';

const wf = (spec: Partial<Workflow['spec']> = {}, annotations?: Record<string, string>): Workflow => ({
  apiVersion: 'meson.dev/v1alpha1',
  kind: 'Workflow',
  metadata: { name: 'daily', namespace: 'team', ...(annotations ? { annotations } : {}) },
  spec: { definition: { step: { name: 'a', shell: { script: 'echo 1' } } }, ...spec },
});

/** Saves the workflow the way the controller would, returning the grown version list. */
function save(w: Workflow, versions: WorkflowVersion[]): WorkflowVersion[] {
  const { create } = nextVersion(w, versions);
  return create ? [...versions, create] : versions;
}

describe('canonicalJson', () => {
  it('sorts keys at every level, drops undefined members and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1], c: undefined, b: 'x' } })).toBe(
      '{"a":{"b":"x","d":[3,1]},"b":1}',
    );
  });

  it('does not depend on key order (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(obj));
        expect(JSON.parse(canonicalJson(obj))).toEqual(JSON.parse(JSON.stringify(obj)));
      }),
    );
  });

  it('rejects what JSON cannot represent', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/cyclic/);
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/NaN/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/function/);
  });
});

describe('nextVersion', () => {
  it('creates v1 with a frozen copy of the spec, the annotations and a hash', () => {
    const w = wf({}, { 'meson.dev/scm-commit': '3f2c1e9' });
    const { create } = nextVersion(w, []);
    expect(create).toMatchObject({
      metadata: {
        name: 'daily-v1',
        namespace: 'team',
        annotations: { 'meson.dev/scm-commit': '3f2c1e9' },
        labels: { 'meson.dev/workflow': 'daily', 'meson.dev/version': '1' },
      },
      spec: { workflow: 'daily', version: 1, specHash: specHash(w.spec), definition: w.spec.definition },
    });
    expect(WorkflowVersionSchema.safeParse(create).error).toBeUndefined();
    // Frozen: mutating the workflow afterwards does not change the version.
    (w.spec.definition as { step: { name: string } }).step.name = 'changed';
    expect(((create as WorkflowVersion).spec.definition as { step: { name: string } }).step.name).toBe('a');
  });

  it('makes no version when the spec hash is unchanged (key order, annotations, activeVersion)', () => {
    let versions = save(wf({ description: 'x', parameters: [{ name: 'p', value: 1 }] }), []);
    const reordered = wf(
      { parameters: [{ value: 1, name: 'p' }], description: 'x' },
      { 'meson.dev/scm-commit': 'new' },
    );
    expect(nextVersion(reordered, versions).create).toBeNull();
    versions = save(reordered, versions);
    expect(
      nextVersion(wf({ description: 'x', parameters: [{ name: 'p', value: 1 }], activeVersion: 1 }), versions)
        .create,
    ).toBeNull();
    expect(versions).toHaveLength(1);
  });

  it('numbers changes 1, 2, 3 and a revert gets a new number', () => {
    let versions: WorkflowVersion[] = [];
    versions = save(wf({ description: 'one' }), versions);
    versions = save(wf({ description: 'two' }), versions);
    versions = save(wf({ description: 'one' }), versions);
    expect(versions.map((v) => [v.metadata.name, v.spec.description])).toEqual([
      ['daily-v1', 'one'],
      ['daily-v2', 'two'],
      ['daily-v3', 'one'],
    ]);
    expect(versions[2]?.spec.activeVersion).toBeUndefined();
  });

  it('ignores versions of other workflows', () => {
    const other = nextVersion({ ...wf(), metadata: { name: 'other', namespace: 'team' } }, [])
      .create as WorkflowVersion;
    expect(nextVersion(wf(), [other]).create?.metadata.name).toBe('daily-v1');
  });

  it('needs a name', () => {
    expect(() => nextVersion({ ...wf(), metadata: {} }, [])).toThrow(VersionError);
  });
});

describe('resolveRunVersion', () => {
  let versions: WorkflowVersion[] = [];
  for (const d of ['one', 'two', 'three']) versions = save(wf({ description: d }), versions);

  it('uses the latest by default', () => {
    expect(resolveRunVersion(wf({ description: 'three' }), versions).spec.version).toBe(3);
  });

  it('honours activeVersion (rollback)', () => {
    const pinned = wf({ description: 'three', activeVersion: 2 });
    expect(resolveRunVersion(pinned, versions).spec.description).toBe('two');
    expect(versionStatus(pinned, versions)).toEqual({
      latestVersion: 3,
      activeVersion: 2,
      specHash: versions[2]?.spec.specHash,
    });
  });

  it('an explicit run version wins over the pin', () => {
    expect(resolveRunVersion(wf({ activeVersion: 2 }), versions, 1).spec.description).toBe('one');
  });

  it('fails clearly for a missing version or none at all', () => {
    expect(() => resolveRunVersion(wf(), versions, 9)).toThrow(
      'spec.version: workflow "daily" has no version 9 (versions: 1, 2, 3)',
    );
    expect(() => resolveRunVersion(wf({ activeVersion: 7 }), versions)).toThrow(/^spec\.activeVersion: /);
    try {
      resolveRunVersion(wf(), []);
      expect.unreachable();
    } catch (e) {
      expect((e as VersionError).code).toBe('VERSION_NONE');
    }
  });
});
