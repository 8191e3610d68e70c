import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { envelopeFor, RESULT_MAX_BYTES_CAP, resultLimit, TERMINATION_MESSAGE_LIMIT } from './pod.ts';
import type { TaskFile } from './protocol.ts';

const POD_EXECUTOR = fileURLToPath(new URL('./pod.ts', import.meta.url));
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function task(script: string, values?: Record<string, string>): TaskFile {
  return {
    launchId: 'l1',
    namespace: 'ns',
    run: 'r',
    workflow: 'w',
    instance: 's',
    attempt: 1,
    step: { name: 's', type: 'shell', shell: { script, ...(values ? { env: values } : {}) } },
    launchedAt: 1,
  };
}

/** Runs the Pod executor as a container would: env in, exit code and termination message out. */
/** `values`: the shell step's MESON_V_n (in the task, as buildPod writes it); `env`: the container's. */
function runInPod(script: string, values?: Record<string, string>, env: Record<string, string> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'meson-pod-'));
  dirs.push(root);
  const term = join(root, 'termination-log');
  const res = spawnSync(process.execPath, [POD_EXECUTOR], {
    env: {
      PATH: process.env.PATH,
      MESON_TASK: JSON.stringify(task(script, values)),
      MESON_WORK_DIR: join(root, 'work'),
      MESON_TERMINATION_MESSAGE_PATH: term,
      ...env,
    },
    encoding: 'utf8',
    timeout: 20_000,
  });
  return {
    code: res.status,
    stdout: res.stdout,
    stderr: res.stderr,
    message: JSON.parse(readFileSync(term, 'utf8')),
  };
}

describe('the executor in a Pod', () => {
  it("reports outputs and links through the termination message; the step's output is the container's", () => {
    const r = runInPod(
      'echo hello; echo oops >&2; echo rows=3 >> "$MESON_OUTPUTS"; echo "ui=http://x" >> "$MESON_LINKS"',
    );
    expect(r.code).toBe(0);
    expect(r.message).toEqual({ outputs: { rows: 3 }, links: [{ name: 'ui', url: 'http://x' }] });
    expect(r.stdout).toContain('hello');
    expect(r.stderr).toContain('oops');
  });

  it('passes values as environment variables, never as code', () => {
    const attack = '$(echo pwned > /dev/stderr); `id`; "; exit 7; "';
    const r = runInPod('printf "v=%s\\n" "$MESON_V_0" >> "$MESON_OUTPUTS"', { MESON_V_0: attack });
    expect(r.code).toBe(0);
    expect(r.message.outputs.v).toBe(attack);
    expect(r.stderr).not.toContain('pwned');
  });

  it("gives the step the container's MESON_PARAM_<name> and nothing else of the container's environment", () => {
    const r = runInPod(
      'printf "p=%s\\nsecret=%s\\n" "$MESON_PARAM_who" "${AWS_SECRET_ACCESS_KEY:-unset}" >> "$MESON_OUTPUTS"',
      undefined,
      { MESON_PARAM_who: '`id`; $(touch /tmp/pwned)', AWS_SECRET_ACCESS_KEY: 'k' },
    );
    expect(r.code).toBe(0);
    expect(r.message.outputs).toEqual({ p: '`id`; $(touch /tmp/pwned)', secret: 'unset' });
  });

  it("exits with the step's exit code and says why it failed", () => {
    const r = runInPod('exit 4');
    expect(r.code).toBe(4);
    expect(r.message).toEqual({ message: 'exit code 4' });
  });

  it('fails clearly when outputs do not fit the 4 KiB termination message', () => {
    const r = runInPod(`printf 'big=%0${TERMINATION_MESSAGE_LIMIT}d\\n' 0 >> "$MESON_OUTPUTS"`);
    expect(r.code).toBe(1);
    expect(r.message.message).toMatch(/over the 4096-byte limit/);
    expect(r.message.outputs).toBeUndefined();
  });

  it('refuses to run without a task', () => {
    const root = mkdtempSync(join(tmpdir(), 'meson-pod-'));
    dirs.push(root);
    const term = join(root, 't');
    const res = spawnSync(process.execPath, [POD_EXECUTOR], {
      env: { PATH: process.env.PATH, MESON_TERMINATION_MESSAGE_PATH: term, MESON_TASK: '{not json' },
      encoding: 'utf8',
    });
    expect(res.status).toBe(1);
    expect(JSON.parse(readFileSync(term, 'utf8')).message).toMatch(/MESON_TASK: expected the task as JSON/);
  });

  it('keeps an envelope at the limit and refuses one byte more', () => {
    const base = { launchId: 'l', pid: 1, phase: 'Succeeded' as const, milestones: {} };
    const overhead = JSON.stringify({ outputs: { k: '' } }).length;
    const fits = envelopeFor({ ...base, outputs: { k: 'a'.repeat(TERMINATION_MESSAGE_LIMIT - overhead) } });
    expect(fits.ok).toBe(true);
    expect(Buffer.byteLength(fits.text)).toBe(TERMINATION_MESSAGE_LIMIT);
    const over = envelopeFor({
      ...base,
      outputs: { k: 'a'.repeat(TERMINATION_MESSAGE_LIMIT - overhead + 1) },
    });
    expect(over.ok).toBe(false);
    // multi-byte characters count as bytes, not characters
    const wide = envelopeFor({ ...base, outputs: { k: 'é'.repeat(TERMINATION_MESSAGE_LIMIT / 2) } });
    expect(wide.ok).toBe(false);
  });
});

describe('resultLimit (MESON_RESULT_MAX_BYTES of a Mesos task)', () => {
  it('takes a positive decimal, capped at 1 MiB; anything else means the Kubernetes limit', () => {
    expect(resultLimit({ MESON_RESULT_MAX_BYTES: '65536' })).toBe(65_536);
    expect(resultLimit({ MESON_RESULT_MAX_BYTES: '999999999' })).toBe(RESULT_MAX_BYTES_CAP);
    for (const bad of ['0', '-1', '1e9', '0x10', ' 10', '10 ', '', '١٠', '12345678901']) {
      expect(resultLimit({ MESON_RESULT_MAX_BYTES: bad }), bad).toBe(0);
    }
    expect(resultLimit({})).toBe(0);
  });

  it('fails an envelope over a given limit, naming it', () => {
    const base = { launchId: 'l', pid: 1, phase: 'Succeeded' as const, milestones: {} };
    const over = envelopeFor(
      { ...base, outputs: { k: 'a'.repeat(100) } },
      50,
      'a Mesos status update',
      'this launcher sets',
    );
    expect(over.ok).toBe(false);
    expect(JSON.parse(over.text).message).toMatch(
      /as a Mesos status update, over the 50-byte limit this launcher sets/,
    );
    expect(envelopeFor({ ...base, outputs: { k: 'a' } }, 50).ok).toBe(true);
  });
});
