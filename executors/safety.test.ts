import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { injectionAttacks } from '../src/engine/test-attacks.ts';
import { planStep, runAttempt, StepSetupError } from './executor.ts';
import { type ExecutorStep, STDOUT_FILE, TASK_FILE, type TaskFile } from './protocol.ts';
import {
  argumentProblem,
  DEFAULT_PARAM_ENV_MAX_BYTES,
  imageProblem,
  paramEnvMaxBytes,
  parameterEnvironment,
  stepEnvironment,
} from './safety.ts';

const work = mkdtempSync(join(tmpdir(), 'meson-safety-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('parameterEnvironment', () => {
  it('exports identifiers as MESON_PARAM_<name>, values as ${} renders them', () => {
    expect(
      parameterEnvironment({ who: 'x', n: 3, ok: true, none: null, list: [1, 'a'], map: { a: 1 } }),
    ).toEqual({
      MESON_PARAM_who: 'x',
      MESON_PARAM_n: '3',
      MESON_PARAM_ok: 'true',
      MESON_PARAM_none: 'null',
      MESON_PARAM_list: '[1,"a"]',
      MESON_PARAM_map: '{"a":1}',
    });
  });
  it('skips names a shell cannot use or that would set another variable, NULs, and values over the bound', () => {
    expect(
      parameterEnvironment(
        {
          $x: 'a',
          'b=c': 'd',
          'e f': 'g',
          ok: 'y',
          nul: 'a\u0000b',
          big: 'x'.repeat(11),
          fits: 'é'.repeat(5),
        },
        10,
      ),
    ).toEqual({ MESON_PARAM_ok: 'y', MESON_PARAM_fits: 'é'.repeat(5) });
  });
  it('reads its bound from MESON_PARAM_ENV_MAX_BYTES, defaulting to 32 KiB', () => {
    expect(paramEnvMaxBytes({})).toBe(DEFAULT_PARAM_ENV_MAX_BYTES);
    expect(DEFAULT_PARAM_ENV_MAX_BYTES).toBe(32768);
    expect(paramEnvMaxBytes({ MESON_PARAM_ENV_MAX_BYTES: '100' })).toBe(100);
    expect(paramEnvMaxBytes({ MESON_PARAM_ENV_MAX_BYTES: 'lots' })).toBe(DEFAULT_PARAM_ENV_MAX_BYTES);
  });
  it('puts a script’s values after the parameters', () => {
    const step: ExecutorStep = {
      name: 's',
      type: 'shell',
      shell: { script: 'echo "${MESON_V_0}"', env: { MESON_V_0: 'v' } },
      parameters: { a: 1 },
    };
    expect(stepEnvironment(step)).toEqual({ MESON_PARAM_a: '1', MESON_V_0: 'v' });
  });
});

describe('values never become options', () => {
  it('accepts image references and refuses anything a runtime would read otherwise', () => {
    for (const ok of [
      'alpine',
      'alpine:3.20',
      'registry.example.com:5000/team/app:1.2-rc_1',
      'ghcr.io/a/b@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
      'localhost/x',
    ])
      expect(imageProblem(ok), ok).toBeUndefined();
    for (const bad of [
      '--privileged',
      '-v=/:/host',
      'alpine --privileged',
      'Repo/App',
      'a:',
      ' alpine',
      'a\nb',
      '',
    ])
      expect(imageProblem(bad), bad).toMatch(/expected an image reference/);
  });
  it('refuses option-like Spark entry points and env names with "="', () => {
    expect(argumentProblem({ name: 's', type: 'spark', spark: { jobClass: '--conf' } })?.field).toBe(
      'spark.jobClass',
    );
    expect(
      argumentProblem({ name: 's', type: 'spark', spark: { jobClass: 'com.x.Job$Inner' } }),
    ).toBeUndefined();
    expect(argumentProblem({ name: 's', type: 'spark', spark: { mainApplication: '--jars=x' } })?.field).toBe(
      'spark.mainApplication',
    );
    expect(
      argumentProblem({
        name: 'c',
        type: 'container',
        container: { image: 'a', env: [{ name: 'PATH=/x:', value: '' }] },
      })?.field,
    ).toBe('container.env[0].name');
  });
  it('planStep refuses them with EXECUTOR_BAD_ARGUMENT before looking for a runtime', () => {
    const ctx = { dir: '/tmp/a', cwd: '/work', env: {}, which: () => '/x', containerRuntime: () => 'docker' };
    const step: ExecutorStep = { name: 'c', type: 'container', container: { image: '--privileged' } };
    expect(() => planStep(step, ctx)).toThrow(StepSetupError);
    expect(() => planStep(step, ctx)).toThrow(/container.image: expected an image reference/);
    try {
      planStep({ name: 's', type: 'spark', spark: { mainApplication: '-v' } }, ctx);
    } catch (e) {
      expect((e as StepSetupError).code).toBe('EXECUTOR_BAD_ARGUMENT');
    }
  });
  it('glues every value to its option on the docker command line, parameters and script values included', () => {
    const ctx = { dir: '/tmp/a', cwd: '/work', env: {}, containerRuntime: () => 'docker' };
    const plan = planStep(
      {
        name: 'c',
        type: 'container',
        container: {
          image: 'alpine:3',
          command: ['-sh', '-c', 'echo "${MESON_V_0}"'],
          env: [{ name: 'MESON_V_0', value: '--privileged' }],
        },
        parameters: { p: '-v=/:/host' },
      },
      ctx,
    ) as { args: string[] };
    const image = plan.args.indexOf('alpine:3');
    // before the image, every argument is an option with its value glued to it
    for (const a of plan.args.slice(4, image)) expect(a).toMatch(/^--(env|entrypoint)=/);
    expect(plan.args).toContain('--env=MESON_PARAM_p=-v=/:/host');
    expect(plan.args).toContain('--env=MESON_V_0=--privileged');
    expect(plan.args).toContain('--entrypoint=-sh');
    expect(plan.args.slice(image)).toEqual(['alpine:3', '-c', 'echo "${MESON_V_0}"']);
  });
  it('copies a path that looks like an option as a path', () => {
    const ctx = { dir: '/tmp/a', cwd: work, env: {}, copyRoots: [work] };
    expect(planStep({ name: 'c', type: 'copy', copy: { from: '--help', to: '-rf' } }, ctx)).toEqual({
      kind: 'copy',
      from: join(work, '--help'),
      to: join(work, '-rf'),
    });
  });
});

describe('the executor runs a resolved script with its values in the environment', () => {
  it('prints every hostile value exactly and runs none', async () => {
    const marker = join(work, 'PWNED');
    const attacks = injectionAttacks(marker);
    const names = Object.keys(attacks);
    const env: Record<string, string> = {};
    names.forEach((k, i) => {
      env[`MESON_V_${i}`] = attacks[k] as string;
    });
    const dir = join(work, 'attempt');
    mkdirSync(dir);
    const task: TaskFile = {
      launchId: 'l1',
      namespace: 'default',
      run: 'r',
      workflow: 'w',
      instance: 's',
      attempt: 1,
      cwd: work,
      launchedAt: Date.now(),
      step: {
        name: 's',
        type: 'shell',
        shell: {
          script: names.map((_, i) => `printf '%s\\n--\\n' "\${MESON_V_${i}}"`).join('\n'),
          env,
        },
        parameters: attacks,
      },
    };
    // the script also reads MESON_PARAM_<name>
    task.step.shell = {
      script: `${task.step.shell?.script}\n${names.map((k) => `printf '%s\\n--\\n' "$MESON_PARAM_${k}"`).join('\n')}`,
      env,
    };
    writeFileSync(join(dir, TASK_FILE), JSON.stringify(task));
    const status = await runAttempt(dir);
    expect(status?.phase, status?.message).toBe('Succeeded');
    expect(existsSync(marker)).toBe(false);
    const values = Object.values(attacks);
    expect(readFileSync(join(dir, STDOUT_FILE), 'utf8')).toBe(
      [...values, ...values].map((v) => `${v}\n--\n`).join(''),
    );
  });
});
