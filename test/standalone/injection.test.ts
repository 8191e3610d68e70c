// No value a run starter, a step output or an artifact supplies runs as code (issue #8.2), end to
// end: runs started through the REST API and through `mesonctl run --param`, steps run by the
// real executor in /bin/sh. Every hostile value must come out exactly, and the marker file that
// any of them would create must never appear.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildApp } from '../../src/api/app.ts';
import { runCommand } from '../../src/cli/commands/run.ts';
import { createStandalone } from '../../src/controller/standalone.ts';
import { injectionAttacks } from '../../src/engine/test-attacks.ts';
import { SqliteAsyncStore } from '../../src/store/sqlite-async.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function workspace(): { root: string; marker: string; attacks: Record<string, string> } {
  const root = mkdtempSync(join(tmpdir(), 'meson-inject-e2e-'));
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  const marker = join(root, 'PWNED');
  const attacks = injectionAttacks(marker);
  // what a step reports as its outputs: the same hostile values
  writeFileSync(join(root, 'outputs.json'), JSON.stringify(attacks));
  return { root, marker, attacks };
}

/**
 * One step per way a value arrives: `${param}` in a script, MESON_PARAM_<name>, a container-less
 * `sh -c` is covered by the unit tests; `${steps.emit.outputs.k}`; and an artifact partition
 * (the consumer runs only if the announced partition is exactly the value).
 */
function spec(names: string[]) {
  const files = (prefix: string, expr: (k: string) => string) =>
    names.map((k) => `printf '%s' "${expr(k)}" > ${prefix}-${k}.out`).join('\n');
  return {
    parameters: names.map((name) => ({ name, type: 'string' })),
    definition: {
      sequence: [
        { step: { name: 'emit', shell: { script: 'cat outputs.json > "$MESON_OUTPUTS"' } } },
        {
          step: {
            name: 'direct',
            shell: {
              script: `${files('direct', (k) => `\${${k}}`)}\n${files('env', (k) => `$MESON_PARAM_${k}`)}\nprintf '%s' ${'${commandSubstitution}'} > unquoted.out`,
            },
          },
        },
        {
          step: {
            name: 'fromOutput',
            shell: { script: files('output', (k) => `\${steps.emit.outputs.${k}}`) },
          },
        },
        {
          step: {
            name: 'produce',
            shell: { script: 'true' },
            outputs: [{ name: 'inj', partition: { v: '${commandSubstitution}', w: '${newline}' } }],
          },
        },
        {
          step: {
            name: 'consume',
            inputs: [{ name: 'inj', partition: { v: '${commandSubstitution}', w: '${newline}' } }],
            shell: { script: `printf '%s|%s' "\${commandSubstitution}" "\${newline}" > partition.out` },
          },
        },
      ],
    },
  };
}

function expectExact(root: string, marker: string, attacks: Record<string, string>): void {
  expect(existsSync(marker)).toBe(false);
  const read = (f: string) => readFileSync(join(root, f), 'utf8');
  for (const [k, v] of Object.entries(attacks)) {
    expect(read(`direct-${k}.out`), k).toBe(v);
    expect(read(`env-${k}.out`), k).toBe(v);
    expect(read(`output-${k}.out`), k).toBe(v);
  }
  // unquoted: split into words, still never code
  expect(read('unquoted.out')).toBe((attacks.commandSubstitution as string).replace(/ /g, ''));
  expect(read('partition.out')).toBe(`${attacks.commandSubstitution}|${attacks.newline}`);
}

describe('hostile values end to end', () => {
  it('through the REST API: parameters, step outputs and artifact partitions stay data', async () => {
    const { root, marker, attacks } = workspace();
    const s = createStandalone({ dataDir: join(root, 'data'), cwd: root, pollMs: 50 });
    s.start();
    const app: FastifyInstance = await buildApp({ store: new SqliteAsyncStore(s.store) });
    cleanups.push(() => s.stop());
    cleanups.push(() => app.close());
    const ns = '/api/v1/namespaces/default';
    const created = await app.inject({
      method: 'POST',
      url: `${ns}/workflows`,
      payload: {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'Workflow',
        metadata: { name: 'inj' },
        spec: spec(Object.keys(attacks)),
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const start = await app.inject({
      method: 'POST',
      url: `${ns}/workflows/inj/runs`,
      payload: { parameters: attacks },
    });
    expect(start.statusCode, start.body).toBe(201);
    const name = start.json().metadata.name;
    let run: { status: { phase: string; message?: string } } | undefined;
    for (let i = 0; i < 600; i++) {
      run = (await app.inject({ method: 'GET', url: `${ns}/runs/${name}` })).json();
      if (['Succeeded', 'Failed', 'Stopped'].includes(run?.status?.phase ?? '')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(run?.status.phase, JSON.stringify(run?.status)).toBe('Succeeded');
    expectExact(root, marker, attacks);
    const artifacts = (await app.inject({ method: 'GET', url: `${ns}/artifacts` })).json().items;
    expect(artifacts.map((a: { spec: { partition: unknown } }) => a.spec.partition)).toEqual([
      { v: attacks.commandSubstitution, w: attacks.newline },
    ]);
  });

  it('through mesonctl run --param', async () => {
    const { root, marker, attacks } = workspace();
    const file = join(root, 'inj.yaml');
    writeFileSync(
      file,
      stringify({
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'Workflow',
        metadata: { name: 'inj' },
        spec: spec(Object.keys(attacks)),
      }),
    );
    // --param values are parsed as JSON where they parse: JSON strings give each value exactly
    const params = Object.entries(attacks).flatMap(([k, v]) => ['--param', `${k}=${JSON.stringify(v)}`]);
    const err: string[] = [];
    const code = await runCommand(['inj.yaml', ...params, '--data-dir', join(root, 'data')], {
      stdout: () => {},
      stderr: (t: string) => void err.push(t),
      stdin: new PassThrough(),
      cwd: root,
      env: {},
    });
    expect(code, err.join('')).toBe(0);
    expectExact(root, marker, attacks);
  });

  it('fails a step whose value holds a NUL, naming the field, and runs nothing', async () => {
    const { root, marker } = workspace();
    writeFileSync(
      join(root, 'nul.yaml'),
      stringify({
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'Workflow',
        metadata: { name: 'nul' },
        spec: {
          parameters: [{ name: 'v', type: 'string' }],
          definition: { step: { name: 's', shell: { script: `echo "\${v}"; touch ${marker}` } } },
        },
      }),
    );
    const out: string[] = [];
    const code = await runCommand(
      ['nul.yaml', '--param', 'v="a\\u0000$(id)"', '--json', '--data-dir', join(root, 'data')],
      {
        stdout: (t: string) => void out.push(t),
        stderr: (t: string) => void out.push(t),
        stdin: new PassThrough(),
        cwd: root,
        env: {},
      },
    );
    expect(code).toBe(1);
    expect(out.join('')).toMatch(/shell\.env\.MESON_V_0: .*NUL/);
    expect(existsSync(marker)).toBe(false);
  });
});
