import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLAIM_FILE, readStatus, STATUS_FILE, TASK_FILE, type TaskFile } from '../../executors/protocol.ts';
import { LocalLauncher, type LocalLauncherOptions } from './local.ts';
import type { AttemptKey, AttemptUpdate, LaunchRequest } from './types.ts';

const dirs: string[] = [];
const launchers: LocalLauncher[] = [];
let restoreEnv = () => {};
afterEach(() => {
  restoreEnv();
  restoreEnv = () => {};
  for (const l of launchers.splice(0)) l.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(opts: Partial<LocalLauncherOptions> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'meson-launcher-'));
  dirs.push(root);
  const updates: AttemptUpdate[] = [];
  const waiters: (() => void)[] = [];
  let n = 0;
  const make = () => {
    const l = new LocalLauncher({
      attemptDir: (k: AttemptKey, id: string) => join(root, k.run, k.instance, `${k.attempt}-${id}`),
      onUpdate: (u) => {
        updates.push(u);
        for (const w of waiters.splice(0)) w();
      },
      newLaunchId: () => `l${++n}`,
      cwd: root,
      pollMs: 50,
      ...opts,
    });
    launchers.push(l);
    return l;
  };
  const until = async (pred: (u: AttemptUpdate[]) => boolean, ms = 15_000) => {
    const end = Date.now() + ms;
    while (!pred(updates)) {
      if (Date.now() > end) throw new Error(`timed out; updates: ${JSON.stringify(updates)}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  };
  return { root, updates, make, until };
}

let cacheRoot = '';
function root0(): string {
  cacheRoot = mkdtempSync(join(tmpdir(), 'meson-cache-'));
  dirs.push(cacheRoot);
  return cacheRoot;
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function launch(l: LocalLauncher, req: LaunchRequest) {
  const rec = l.prepare(req);
  l.launch(req, rec);
  return rec;
}

function shell(instance: string, script: string): LaunchRequest {
  return {
    namespace: 'ns',
    run: 'r',
    workflow: 'w',
    instance,
    attempt: 1,
    step: { name: instance, type: 'shell', shell: { script } },
  };
}

describe('LocalLauncher', () => {
  it('runs a shell step in a detached executor, with logs, outputs and links', async () => {
    const { make, until, updates } = setup();
    const l = make();
    const rec = launch(
      l,
      shell(
        'a',
        'echo out; echo err >&2; echo "rows=12" >> "$MESON_OUTPUTS"; echo "ui=http://x" > "$MESON_LINKS"',
      ),
    );
    await until((u) => u.some((x) => x.type === 'finished'));
    const fin = updates.find((u) => u.type === 'finished');
    expect(fin).toMatchObject({
      type: 'finished',
      key: { instance: 'a' },
      status: {
        phase: 'Succeeded',
        exitCode: 0,
        outputs: { rows: 12 },
        links: [{ name: 'ui', url: 'http://x' }],
      },
    });
    if (fin?.type !== 'finished') throw new Error('unreachable');
    expect(fin.status.milestones.running).toBeGreaterThan(0);
    expect(fin.status.milestones.finished).toBeGreaterThanOrEqual(fin.status.milestones.running!);
    expect(readFileSync(join(rec.dir!, 'stdout.log'), 'utf8')).toBe('out\n');
    expect(readFileSync(join(rec.dir!, 'stderr.log'), 'utf8')).toBe('err\n');
  });

  it('reports a failing step with its exit code, and a container step without runtime as a clear failure', async () => {
    const { make, until, updates } = setup();
    const l = make();
    launch(l, shell('bad', 'exit 3'));
    launch(l, { ...shell('ctr', ''), step: { name: 'ctr', type: 'container', container: { image: 'x' } } });
    await until((u) => u.filter((x) => x.type === 'finished').length === 2);
    const by = (i: string) => updates.find((u) => u.type === 'finished' && u.key.instance === i);
    expect(by('bad')).toMatchObject({ status: { phase: 'Failed', exitCode: 3 } });
    // the documented code leads the message, so users can search for it (docs/executor-protocol.md)
    expect(by('ctr')).toMatchObject({
      status: { phase: 'Failed', message: expect.stringMatching(/^EXECUTOR_NO_CONTAINER_RUNTIME: /) },
    });
  });

  it('completes noop steps in-process', async () => {
    const { make, until, updates } = setup();
    const rec = launch(make(), { ...shell('n', ''), step: { name: 'n', type: 'noop' } });
    expect(rec.inProcess).toBe(true);
    await until((u) => u.length === 1);
    expect(updates[0]).toMatchObject({ type: 'finished', status: { phase: 'Succeeded' } });
  });

  it('kills a running step', async () => {
    const { make, until, updates } = setup();
    const l = make();
    const req = shell('slow', 'sleep 30');
    const rec = launch(l, req);
    await until((u) => u.some((x) => x.type === 'running'));
    l.kill(req, rec);
    await until((u) => u.some((x) => x.type === 'finished'));
    expect(updates.find((u) => u.type === 'finished')).toMatchObject({
      status: { phase: 'Failed', message: expect.stringMatching(/killed/) },
    });
  });

  it('adopts an attempt started by another launcher (a previous server) and sees it finish', async () => {
    const { make, until, updates, root } = setup();
    const first = make();
    const req = shell('adopted', `sleep 0.5; echo done > ${join(root, 'side-effect')}`);
    const rec = launch(first, req);
    first.close(); // the "server" goes away; the executor keeps running
    const second = make();
    second.adopt(req, rec, req);
    await until((u) => u.some((x) => x.type === 'finished'));
    expect(updates.filter((u) => u.type === 'finished')).toHaveLength(1);
    expect(updates.find((u) => u.type === 'finished')).toMatchObject({ status: { phase: 'Succeeded' } });
    expect(readFileSync(join(root, 'side-effect'), 'utf8')).toBe('done\n');
  });

  it('declares an attempt whose executor never started lost, and fences it', async () => {
    const { make, until, updates, root } = setup({ startGraceMs: 100 });
    const dir = join(root, 'never');
    mkdirSync(dir, { recursive: true });
    const req = shell('never', 'echo should-not-run');
    const task: TaskFile = {
      launchId: 'x',
      namespace: 'ns',
      run: 'r',
      workflow: 'w',
      instance: 'never',
      attempt: 1,
      step: req.step,
      launchedAt: Date.now() - 1000,
    };
    writeFileSync(join(dir, TASK_FILE), JSON.stringify(task));
    make().adopt(req, { launchId: 'x', dir, launchedAt: task.launchedAt }, req);
    await until((u) => u.length === 1);
    expect(updates[0]).toMatchObject({ type: 'lost' });
    expect(readFileSync(join(dir, CLAIM_FILE), 'utf8')).toMatch(/^controller/);
  });
  const SECRETS = {
    MESON_API_TOKEN: 'tok-SECRET-1',
    AWS_SECRET_ACCESS_KEY: 'aws-SECRET-2',
    SOME_RANDOM_VAR: 'rnd-SECRET-3',
  };

  it('gives shell, container and spark steps a clean environment: no server secrets, passthrough names only', async () => {
    const root0 = mkdtempSync(join(tmpdir(), 'meson-env-'));
    dirs.push(root0);
    const bin = join(root0, 'bin');
    mkdirSync(bin);
    const fake = (name: string) => {
      writeFileSync(
        join(bin, name),
        `#!/bin/sh\n[ "$1" = info ] && exit 0\n[ "$1" = rm ] && exit 0\nenv > ${root0}/${name}.env\nprintf '%s\\n' "$@" > ${root0}/${name}.args\n`,
      );
      chmodSync(join(bin, name), 0o755);
    };
    fake('docker');
    fake('spark-submit');
    // the server's own environment (what the old executor passed on whole)
    const saved = { ...process.env };
    Object.assign(process.env, SECRETS, {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: '/home/server',
      ALLOWED_VAR: 'allowed-value',
      MESON_SPARK_APPLICATION: '/opt/app.jar',
    });
    restoreEnv = () => {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    };
    const { make, until, updates } = setup({ cwd: undefined, envPassthrough: ['ALLOWED_VAR'] });
    const l = make();
    const sh = launch(
      l,
      shell('sh', 'env > env.txt; pwd > pwd.txt; tr "\\0" "\\n" < /proc/$PPID/environ > executor-env.txt'),
    );
    launch(l, {
      ...shell('ctr', ''),
      step: { name: 'ctr', type: 'container', container: { image: 'img', env: [{ name: 'K', value: 'V' }] } },
    });
    launch(l, { ...shell('spk', ''), step: { name: 'spk', type: 'spark', spark: { jobClass: 'a.B' } } });
    await until((u) => u.filter((x) => x.type === 'finished').length === 3);
    expect(
      updates.filter((u) => u.type === 'finished').map((u) => u.type === 'finished' && u.status.phase),
    ).toEqual(['Succeeded', 'Succeeded', 'Succeeded']);
    const work = join(sh.dir!, 'work');
    const env = readFileSync(join(work, 'env.txt'), 'utf8');
    const seen = [
      env,
      readFileSync(join(work, 'executor-env.txt'), 'utf8'),
      readFileSync(join(root0, 'docker.env'), 'utf8'),
      readFileSync(join(root0, 'docker.args'), 'utf8'),
      readFileSync(join(root0, 'spark-submit.env'), 'utf8'),
      readFileSync(join(root0, 'spark-submit.args'), 'utf8'),
    ];
    for (const text of seen) expect(text).not.toMatch(/SECRET/);
    // its own working directory and HOME, the operator's passthrough variable, the protocol variables
    expect(readFileSync(join(work, 'pwd.txt'), 'utf8').trim()).toBe(work);
    expect(env).toContain(`HOME=${work}\n`);
    expect(env).toContain('ALLOWED_VAR=allowed-value\n');
    expect(env).toContain(`MESON_OUTPUTS=${join(sh.dir!, 'outputs')}\n`);
    // the container client keeps what it needs (HOME for registry credentials); the container gets
    // the passthrough variable by name, never a value on the command line
    expect(seen[2]).toContain('HOME=/home/server\n');
    expect(seen[3]).toMatch(/^--env=ALLOWED_VAR$/m);
    expect(seen[3]).toContain('K=V');
    expect(seen[5]).toContain('/opt/app.jar');
  });

  it('fails a step whose outputs or links break a limit, naming the limit, without reading a huge file', async () => {
    const { make, until, updates } = setup({ limits: { outputKeys: 50 } });
    const l = make();
    const cases: Record<string, string> = {
      big: 'head -c 50000000 /dev/zero | tr "\\0" a > "$MESON_OUTPUTS"',
      keys: 'i=0; while [ $i -lt 60 ]; do echo "k$i=1"; i=$((i+1)); done > "$MESON_OUTPUTS"',
      value: '{ printf "v="; head -c 300000 /dev/zero | tr "\\0" a; } > "$MESON_OUTPUTS"',
      links:
        'i=0; while [ $i -lt 3000 ]; do echo "l$i=http://example.com/$i"; i=$((i+1)); done > "$MESON_LINKS"',
      junk: 'head -c 4096 /dev/urandom > "$MESON_OUTPUTS"',
      zero: 'ln -s /dev/zero "$MESON_OUTPUTS"',
      fifo: 'mkfifo "$MESON_OUTPUTS"',
      js: 'echo "ui=javascript:alert(1)" > "$MESON_LINKS"',
      ok: 'echo "fine=1" > "$MESON_OUTPUTS"',
    };
    for (const [name, script] of Object.entries(cases)) launch(l, shell(name, script));
    await until((u) => u.filter((x) => x.type === 'finished').length === Object.keys(cases).length, 30_000);
    const by = (i: string) => {
      const u = updates.find((x) => x.type === 'finished' && x.key.instance === i);
      return u?.type === 'finished' ? u.status : undefined;
    };
    expect(by('big')).toMatchObject({
      phase: 'Failed',
      message: expect.stringMatching(
        /^EXECUTOR_OUTPUTS_TOO_LARGE: .*50000000 bytes, over the limit outputsBytes=1048576/,
      ),
    });
    expect(by('big')?.outputs).toBeUndefined();
    expect(by('keys')?.message).toMatch(/^EXECUTOR_OUTPUTS_TOO_LARGE: .*outputKeys=50/);
    expect(by('value')?.message).toMatch(/^EXECUTOR_OUTPUTS_TOO_LARGE: .*outputValueBytes=262144/);
    expect(by('links')?.message).toMatch(/^EXECUTOR_LINKS_TOO_LARGE: .*linksBytes=65536/);
    expect(by('junk')?.message).toMatch(/^EXECUTOR_OUTPUTS_INVALID: /);
    expect(by('zero')?.message).toMatch(/^EXECUTOR_OUTPUTS_INVALID: .*symbolic link/);
    expect(by('fifo')?.message).toMatch(/^EXECUTOR_OUTPUTS_INVALID: .*regular file/);
    expect(by('js')?.message).toMatch(/^EXECUTOR_LINKS_INVALID: /);
    expect(by('ok')).toMatchObject({ phase: 'Succeeded', outputs: { fine: 1 } });
  });

  it('checks a status.json the step rewrote itself: outputs over the limits fail, huge messages are cut, huge files ignored', async () => {
    const { make, until, updates, root } = setup({ startGraceMs: 60_000 });
    const l = make();
    const forged = (name: string, content: string) => {
      const dir = join(root, 'forged', name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, CLAIM_FILE), 'executor 999999\n');
      writeFileSync(join(dir, STATUS_FILE), content);
      const req = shell(name, 'true');
      l.adopt(req, { launchId: 'x', dir, launchedAt: Date.now() }, req);
      return dir;
    };
    const status = (extra: object) =>
      JSON.stringify({ launchId: 'x', pid: 999999, phase: 'Succeeded', milestones: {}, ...extra });
    forged(
      'keys',
      status({ outputs: Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i])) }),
    );
    forged('msg', status({ phase: 'Failed', message: 'm'.repeat(1_000_000) }));
    forged('links', status({ links: [{ name: 'x', url: 'javascript:alert(1)' }] }));
    const huge = forged('huge', status({ outputs: { a: 'x'.repeat(30 * 1024 * 1024) } }));
    await until((u) => u.filter((x) => x.type === 'finished').length === 4, 20_000);
    const by = (i: string) => {
      const u = updates.find((x) => x.type === 'finished' && x.key.instance === i);
      return u?.type === 'finished' ? u.status : undefined;
    };
    expect(by('keys')).toMatchObject({ phase: 'Failed', message: expect.stringMatching(/outputKeys=1000/) });
    expect(by('keys')?.outputs).toBeUndefined();
    expect(Buffer.byteLength(by('msg')?.message ?? '')).toBeLessThanOrEqual(4096);
    expect(by('links')?.message).toMatch(/^EXECUTOR_LINKS_INVALID/);
    // over the launcher's cap: not read at all; its (dead) executor left no status it accepts
    expect(readStatus(huge, 1024)).toBeUndefined();
    expect(by('huge')).toMatchObject({ phase: 'Failed' });
    expect(by('huge')?.outputs).toBeUndefined();
  });
  it("after kill -9 of a container step's executor, kills its client and removes its container by name", async () => {
    const { make, until, updates, root } = setup();
    const bin = join(root, 'bin');
    mkdirSync(bin);
    const log = join(root, 'docker.log');
    writeFileSync(
      join(bin, 'docker'),
      `#!/bin/sh\ncase "$1" in\n  info) exit 0;;\n  run) echo "run $*" >> ${log}; exec sleep 30;;\n  rm) echo "rm $*" >> ${log};;\nesac\n`,
    );
    chmodSync(join(bin, 'docker'), 0o755);
    const saved = process.env.PATH;
    process.env.PATH = `${bin}:${saved}`;
    restoreEnv = () => {
      process.env.PATH = saved;
    };
    const l = make();
    const req = {
      ...shell('ctr', ''),
      step: { name: 'ctr', type: 'container' as const, container: { image: 'img' } },
    };
    const rec = launch(l, req);
    let status = readStatus(rec.dir!);
    for (let i = 0; i < 300 && !(status?.childPid && readLog(log).includes('run ')); i++) {
      await new Promise((r) => setTimeout(r, 25));
      status = readStatus(rec.dir!);
    }
    expect(status?.container?.name).toBe(`meson-${rec.launchId}`);
    expect(readLog(log)).toContain(`--name=meson-${rec.launchId}`);
    process.kill(status!.pid, 'SIGKILL');
    await until((u) => u.some((x) => x.type === 'finished'));
    expect(updates.find((u) => u.type === 'finished')).toMatchObject({
      status: {
        phase: 'Failed',
        message: expect.stringMatching(/^EXECUTOR_DIED: .*its container was removed/),
      },
    });
    expect(readLog(log)).toContain(`rm rm -f meson-${rec.launchId}`);
    expect(readStatus(rec.dir!)).toMatchObject({ phase: 'Failed' });
  });
  it('gives executors a Node compile cache when asked, and nothing of it to the step', async () => {
    const { make, until, updates, root } = setup({ compileCacheDir: join(root0(), 'cache') });
    const rec = launch(
      make(),
      shell('c', 'tr "\\0" "\\n" < /proc/$PPID/environ > executor-env.txt; env > env.txt'),
    );
    await until((u) => u.some((x) => x.type === 'finished'));
    expect(updates.find((u) => u.type === 'finished')).toMatchObject({ status: { phase: 'Succeeded' } });
    expect(readFileSync(join(root, 'executor-env.txt'), 'utf8')).toMatch(/^NODE_COMPILE_CACHE=.*\/cache$/m);
    expect(readFileSync(join(root, 'env.txt'), 'utf8')).not.toContain('NODE_COMPILE_CACHE');
    expect(readdirSync(join(cacheRoot, 'cache')).length).toBeGreaterThan(0);
    expect(rec.dir).toBeDefined();
  });
});
