import { describe, expect, it } from 'vitest';
import { clientRunIssues, isSystemKey, isValidName, nameProblem, userMetadataMapIssues } from './names.ts';
import { validateDocument } from './validate.ts';

// forms of "a name that leaves its directory" or is not what Kubernetes would accept
const HOSTILE = [
  '..',
  '.',
  '../team-victim/run',
  '../../../../outside/evil',
  'a/b',
  'a\\b',
  '%2e%2e',
  '',
  'UPPER',
  'a_b',
  '-a',
  'a-',
  'a..b',
  ' a',
  'a\u0000b',
  'é',
  'x'.repeat(254),
];

describe('names', () => {
  it('accepts Kubernetes names and refuses every other form', () => {
    for (const ok of ['a', 'team-a', '0', 'a.b-c', 'x'.repeat(253)])
      expect(isValidName('name', ok)).toBe(true);
    for (const ok of ['a', 'team-a', 'x'.repeat(63)]) expect(isValidName('namespace', ok)).toBe(true);
    for (const bad of HOSTILE) {
      expect(isValidName('name', bad), bad).toBe(false);
      expect(isValidName('namespace', bad), bad).toBe(false);
    }
    // a namespace is a label: no dots, at most 63
    expect(isValidName('namespace', 'a.b')).toBe(false);
    expect(isValidName('namespace', 'x'.repeat(64))).toBe(false);
    expect(isValidName('name', 42)).toBe(false);
  });

  it('checks generateName as the prefix of a name, and step instance ids', () => {
    for (const ok of ['wf-', 'a.', 'a']) expect(isValidName('generateName', ok), ok).toBe(true);
    for (const bad of ['../', '-', 'A-', 'a/b-', '', 'x'.repeat(249)])
      expect(isValidName('generateName', bad), bad).toBe(false);
    for (const ok of ['agg', 'agg[3]', 'outer[2].inner[0]', '_x-y'])
      expect(isValidName('stepInstance', ok)).toBe(true);
    for (const bad of ['..', '.', 'a/..', '../x', 'a.', '.a', 'a[x]', 'a[-1]', '1a', 'a b'])
      expect(isValidName('stepInstance', bad), bad).toBe(false);
    expect(nameProblem('namespace', '../x')).toMatch(/DNS-1123 label.*found "\.\.\/x"/);
  });

  it('makes the validator refuse bad names in metadata and in every name a run refers to', () => {
    const run = (metadata: object, spec: object) =>
      validateDocument({ apiVersion: 'meson.dev/v1alpha1', kind: 'WorkflowRun', metadata, spec })
        .filter((i) => i.code === 'NAME_INVALID')
        .map((i) => i.path);
    expect(run({ name: '../../../../outside/evil' }, { workflow: 'w' })).toEqual(['metadata.name']);
    expect(run({ generateName: '../x-' }, { workflow: 'w' })).toEqual(['metadata.generateName']);
    expect(run({ name: 'r', namespace: '../team-victim' }, { workflow: 'w' })).toEqual([
      'metadata.namespace',
    ]);
    expect(run({ name: 'r' }, { workflow: '../w' })).toEqual(['spec.workflow']);
    expect(
      run({ name: 'r' }, { workflow: 'w', restartOf: { run: '../team-victim/r', from: 'failed' } }),
    ).toEqual(['spec.restartOf.run']);
    expect(
      run(
        { name: 'r' },
        { workflow: 'w', initiator: { type: 'subworkflow', parent: { run: '../p', step: '../s' } } },
      ),
    ).toEqual(['spec.initiator.parent.run', 'spec.initiator.parent.step']);
  });

  it('refuses system-owned fields written by a client', () => {
    expect(isSystemKey('meson.dev/backfill')).toBe(true);
    expect(isSystemKey('MESON.DEV/priority')).toBe(true);
    expect(isSystemKey('x.meson.dev/y')).toBe(true);
    expect(isSystemKey('notmeson.dev/y')).toBe(false);
    expect(isSystemKey('team')).toBe(false);
    const issues = clientRunIssues(
      { labels: { 'meson.dev/backfill': 'b', ok: 'v' }, annotations: { 'meson.dev/priority': '100' } },
      { initiator: { type: 'subworkflow', parent: { run: 'p', step: 's' } } },
    );
    expect(issues.map((i) => [i.path, i.code])).toEqual([
      ['metadata.labels["meson.dev/backfill"]', 'SYSTEM_FIELD'],
      ['metadata.annotations["meson.dev/priority"]', 'SYSTEM_FIELD'],
      ['spec.initiator.type', 'SYSTEM_FIELD'],
      ['spec.initiator.parent', 'SYSTEM_FIELD'],
    ]);
    for (const type of ['cron', 'artifact', 'backfill', 'restart', 'subworkflow'])
      expect(clientRunIssues({}, { initiator: { type } })).toHaveLength(1);
    for (const type of ['api', 'manual']) expect(clientRunIssues({}, { initiator: { type } })).toEqual([]);
    // what triggered a run (TRIGGER in expressions) is the system's to say, whatever the type
    for (const [field, value] of [
      ['scheduledTime', '2026-01-01T00:00:00Z'],
      ['date', 20260101],
      ['artifacts', [{ name: 'views', partition: { dateint: 20200101 } }]],
      ['artifacts', []],
      ['date', null],
    ] as const)
      expect(
        clientRunIssues({}, { initiator: { type: 'manual', [field]: value } }).map((i) => [i.path, i.code]),
      ).toEqual([[`spec.initiator.${field}`, 'SYSTEM_FIELD']]);
    expect(
      userMetadataMapIssues({ 'a/b/c': 'x', ok: 'a b' }, ['labels'], 'labels').map((i) => i.path),
    ).toEqual(['labels["a/b/c"]', 'labels.ok']);
  });
});
