import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_TIER } from '../crds/index.ts';
import { validateDocument } from '../crds/validate.ts';
import {
  loadPreemption,
  MAX_PREEMPTION_CONFIG_BYTES,
  PreemptionConfigError,
  parsePreemption,
  schedulerPreemption,
  stepTier,
} from './preemption.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('preemption settings', () => {
  const settings = parsePreemption({
    defaultTier: 4,
    namespaces: {
      prod: { preempt: true, tier: 0, guaranteed: { cpus: '2', memory: '4Gi', disk: '1G', gpus: 1 } },
      batch: { tier: 5, minTier: 3 },
    },
  });

  it('clamps the tier a step asks for to its namespace bound; the default when it asks none', () => {
    expect(stepTier(settings, 'batch')).toBe(5);
    expect(stepTier(settings, 'batch', 0)).toBe(3); // above its bound
    expect(stepTier(settings, 'batch', 3)).toBe(3);
    expect(stepTier(settings, 'batch', 9)).toBe(9); // a lower tier is always allowed
    expect(stepTier(settings, 'prod', 0)).toBe(0);
    // not listed: defaultTier is its tier and its bound
    expect(stepTier(settings, 'team', 0)).toBe(4);
    expect(stepTier(settings, 'team')).toBe(4);
    // hostile values that got past validation some other way
    expect(stepTier(settings, 'batch', -1)).toBe(3);
    expect(stepTier(settings, 'batch', 2.5)).toBe(5);
    expect(stepTier(settings, 'batch', Number.NaN)).toBe(5);
    expect(stepTier(settings, 'batch', 1e9)).toBe(MAX_TIER);
    // a namespace named like an Object member is not listed
    expect(stepTier(settings, 'constructor', 0)).toBe(4);
    expect(stepTier(settings, '__proto__', 0)).toBe(4);
    // no settings: tier 0 at most, so nobody rises above anybody
    expect(stepTier(undefined, 'x', 0)).toBe(0);
    expect(stepTier(undefined, 'x', 7)).toBe(7);
  });

  it('gives the scheduler the namespaces that preempt and the guaranteed shares; off when none preempts', () => {
    expect(schedulerPreemption(settings)).toEqual({
      namespaces: {
        prod: {
          enabled: true,
          guaranteed: { cpuMillis: 2000, memoryBytes: 4 * 2 ** 30, diskBytes: 1e9, gpus: 1 },
        },
        batch: {},
      },
    });
    expect(schedulerPreemption(parsePreemption({ namespaces: { prod: { tier: 0 } } }))).toBeUndefined();
    expect(schedulerPreemption(undefined)).toBeUndefined();
    expect(
      schedulerPreemption(parsePreemption({ maxSearchSteps: 10, namespaces: { a: { preempt: true } } })),
    ).toMatchObject({ maxSearchSteps: 10 });
  });

  it('refuses bad settings naming the field and what was expected', () => {
    const bad: [unknown, RegExp][] = [
      [{ namespaces: { prod: { preempt: 'yes' } } }, /preemption\.namespaces\.prod\.preempt: .*boolean/],
      [{ namespaces: { prod: { tier: -1 } } }, /preemption\.namespaces\.prod\.tier/],
      [{ namespaces: { prod: { tier: 1.5 } } }, /preemption\.namespaces\.prod\.tier/],
      [{ namespaces: { prod: { tier: MAX_TIER + 1 } } }, /preemption\.namespaces\.prod\.tier/],
      [{ namespaces: { prod: { tier: 1, minTier: 2 } } }, /minTier: expected minTier <= tier/],
      [{ namespaces: { Prod_1: {} } }, /expected a namespace name/],
      [
        { namespaces: { prod: { guaranteed: { cpus: 'lots' } } } },
        /preemption\.namespaces\.prod\.guaranteed\.cpus/,
      ],
      [{ namespaces: { prod: { guaranteed: { gpus: 'two' } } } }, /guaranteed\.gpus/],
      [{ namespaces: { prod: { guaranteed: { ports: 1 } } } }, /guaranteed/],
      [
        { namespaces: { prod: { guaranteed: { memory: '-1Gi' } } } },
        /guaranteed\.memory: expected a non-negative/,
      ],
      [{ namespaces: { prod: { guaranteed: { cpus: '1e30' } } } }, /guaranteed\.cpus/],
      [{ namespaces: { prod: { priority: 1 } } }, /preemption\.namespaces\.prod/],
      [{ killRetrySeconds: 0 }, /killRetrySeconds/],
      [[], /preemption/],
    ];
    for (const [input, msg] of bad) {
      let err: unknown;
      try {
        parsePreemption(input);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(input)).toBeInstanceOf(PreemptionConfigError);
      expect((err as PreemptionConfigError).code).toBe('PREEMPTION_CONFIG_INVALID');
      expect((err as Error).message).toMatch(msg);
    }
  });

  it('loads inline JSON or a YAML file; refuses an unreadable, oversized or alias-bomb file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meson-preemption-'));
    dirs.push(dir);
    expect(loadPreemption('{"namespaces":{"prod":{"preempt":true}}}', dir).namespaces?.prod?.preempt).toBe(
      true,
    );
    writeFileSync(join(dir, 'p.yaml'), 'namespaces:\n  batch:\n    tier: 5\n');
    expect(loadPreemption('p.yaml', dir).namespaces?.batch?.tier).toBe(5);
    expect(() => loadPreemption('missing.yaml', dir)).toThrow(/--preemption: cannot read/);
    writeFileSync(join(dir, 'big.yaml'), `# ${'x'.repeat(MAX_PREEMPTION_CONFIG_BYTES)}\n`);
    expect(() => loadPreemption('big.yaml', dir)).toThrow(/over \d+ bytes/);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 0; i < 12; i++)
      bomb.push(`${'b'.repeat(i + 1)}: &${'b'.repeat(i + 1)} [${'*a, '.repeat(9)}*a]`);
    writeFileSync(join(dir, 'bomb.yaml'), bomb.join('\n'));
    expect(() => loadPreemption('bomb.yaml', dir)).toThrow(PreemptionConfigError);
    expect(() => loadPreemption('{not json', dir)).toThrow(/not YAML or JSON/);
  });

  it('a workflow can only ask for a literal tier: an expression a run starter could fill is refused', () => {
    const wf = (tier: unknown) => ({
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'Workflow',
      metadata: { name: 'w', namespace: 'default' },
      spec: { definition: { step: { name: 's', shell: { script: 'true' }, tier } } },
    });
    expect(validateDocument(wf(3))).toEqual([]);
    for (const t of ['${params.tier}', '0', -1, 0.5, MAX_TIER + 1, { value: 0 }]) {
      expect(
        validateDocument(wf(t))
          .map((i) => i.path)
          .join(),
        JSON.stringify(t),
      ).toMatch(/tier/);
    }
  });
});
