// Values never become shell code: a script's `${}` turn into references to environment variables
// that hold the values. These tests run the resolved scripts in real shells.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Step } from '../crds/index.ts';
import { shellScriptIndex } from '../crds/shell-lint.ts';
import { ResolveError, resolveStep, scriptByReference } from './resolve.ts';
import { injectionAttacks } from './test-attacks.ts';
import type { Value } from './types.ts';

const work = mkdtempSync(join(tmpdir(), 'meson-inject-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const marker = join(work, 'PWNED');

const ATTACKS = injectionAttacks(marker);

function run(shell: string, script: string, env: Record<string, string>) {
  return spawnSync(shell, ['-c', script], {
    cwd: work,
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
  });
}

const shells = ['/bin/sh', ...(existsSync('/bin/bash') ? ['/bin/bash'] : [])];

describe('shell scripts get references, not values', () => {
  it('replaces each distinct ${} by ${MESON_V_<n>} and carries the values as text', () => {
    const out = scriptByReference('s', 'echo "${a}" ${b} "${a}" x${n}y $${HOME} ${l}', {
      a: 'A',
      b: 'B',
      n: 3,
      l: [1, 'x'],
    });
    expect(out.script).toBe(
      'echo "${MESON_V_0}" ${MESON_V_1} "${MESON_V_0}" x${MESON_V_2}y ${HOME} ${MESON_V_3}',
    );
    expect(out.env).toEqual({ MESON_V_0: 'A', MESON_V_1: 'B', MESON_V_2: '3', MESON_V_3: '[1,"x"]' });
  });

  for (const shell of shells)
    for (const [name, value] of Object.entries(ATTACKS))
      it(`${shell}: ${name} is printed exactly and never runs`, () => {
        rmSync(marker, { force: true });
        const step: Step = {
          name: 's',
          shell: {
            script: `printf '%s|' "\${v}" "\${steps.a.outputs.x}"\nprintf '%s|' \${v}\n: "\${other}"`,
          },
        };
        const vars: Record<string, Value> = {
          v: value,
          other: `$(touch ${marker})`,
          steps: { a: { outputs: { x: value } } },
        };
        const r = resolveStep(step, 'spec.definition.step', vars, true);
        expect(r.shell?.script).toBe(
          `printf '%s|' "\${MESON_V_0}" "\${MESON_V_1}"\nprintf '%s|' \${MESON_V_0}\n: "\${MESON_V_2}"`,
        );
        expect(r.shell?.env?.MESON_V_2).toBe(vars.other);
        const res = run(shell, r.shell?.script ?? '', r.shell?.env ?? {});
        expect(existsSync(marker)).toBe(false);
        // quoted: exact; unquoted: split into words (a glob could still match files: quote it)
        expect(res.stdout.startsWith(`${value}|${value}|`)).toBe(true);
      });

  it('refuses a NUL in a value with the field path (a process cannot receive one)', () => {
    const step: Step = { name: 's', shell: { script: 'echo "${v}"' } };
    expect(() => resolveStep(step, 'p', { v: 'a\u0000b' }, true)).toThrow(ResolveError);
    expect(() => resolveStep(step, 'p', { v: 'a\u0000b' }, true)).toThrow(/p\.shell\.env\.MESON_V_0: .*NUL/);
    const c: Step = { name: 'c', container: { image: 'x', args: ['${v}'] } };
    expect(() => resolveStep(c, 'p', { v: 'a\u0000b' }, true)).toThrow(/p\.container\.args\[0\]: .*NUL/);
  });

  it('leaves a script without ${} as it is, with no env', () => {
    const r = resolveStep({ name: 's', shell: { script: 'echo "$HOME"' } }, 'p', {}, true);
    expect(r.shell).toEqual({ script: 'echo "$HOME"' });
  });
});

describe('containers', () => {
  it('finds the script of a shell run with -c in command or args', () => {
    expect(shellScriptIndex(['sh', '-c', 'S'])).toBe(2);
    expect(shellScriptIndex(['/bin/bash', '-ec', 'S', 'name', 'arg'])).toBe(2);
    expect(shellScriptIndex(['bash', '-o', 'pipefail', '-xc', 'S'])).toBe(4);
    expect(shellScriptIndex(['bash', '--noprofile', '-e', '-c', 'S'])).toBe(4);
    expect(shellScriptIndex(['busybox', 'sh', '-c', 'S'])).toBe(3);
    expect(shellScriptIndex(['/usr/bin/zsh', '-c', 'S'])).toBe(2);
    expect(shellScriptIndex(['sh', 'script.sh', '-c'])).toBe(-1);
    expect(shellScriptIndex(['python', '-c', 'S'])).toBe(-1);
    expect(shellScriptIndex(['sh', '-c'])).toBe(-1);
    expect(shellScriptIndex([])).toBe(-1);
  });

  it('rewrites that script like a shell step and adds the values to the container env', () => {
    for (const [command, args, at] of [
      [['sh', '-c', 'echo "${v}"'], [], 'command'],
      [['/bin/bash', '-ec'], ['echo "${v}"'], 'args'],
    ] as const) {
      const step: Step = {
        name: 'c',
        container: {
          image: 'alpine:3',
          command: [...command],
          args: [...args],
          env: [{ name: 'K', value: '${v}' }],
        },
      };
      const r = resolveStep(step, 'p', { v: ATTACKS.commandSubstitution as string }, true);
      const argv = [...(r.container?.command ?? []), ...(r.container?.args ?? [])];
      expect(argv.at(-1)).toBe('echo "${MESON_V_0}"');
      expect(at === 'command' ? r.container?.command?.[2] : r.container?.args?.[0]).toBe(
        'echo "${MESON_V_0}"',
      );
      expect(r.container?.env).toEqual([
        { name: 'K', value: ATTACKS.commandSubstitution },
        { name: 'MESON_V_0', value: ATTACKS.commandSubstitution },
      ]);
      rmSync(marker, { force: true });
      const env = Object.fromEntries((r.container?.env ?? []).map((e) => [e.name, e.value]));
      const res = run('/bin/sh', argv.at(-1) as string, env);
      expect(existsSync(marker)).toBe(false);
      expect(res.stdout).toBe(`${ATTACKS.commandSubstitution}\n`);
    }
  });

  it('keeps plain argv values as separate arguments (no shell reads them)', () => {
    const step: Step = {
      name: 'c',
      container: { image: 'app:1', command: ['python', '-m', 'job'], args: ['--day', '${v}'] },
    };
    const r = resolveStep(step, 'p', { v: '$(id); --rm' }, true);
    expect(r.container?.args).toEqual(['--day', '$(id); --rm']);
    expect(r.container?.env).toBeUndefined();
  });
});
