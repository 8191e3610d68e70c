import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLAIM_FILE, TASK_FILE, type TaskFile } from '../../executors/protocol.ts';
import { LocalLauncher } from './local.ts';
import type { AttemptKey, AttemptUpdate, LaunchRequest } from './types.ts';

const dirs: string[] = [];
const launchers: LocalLauncher[] = [];
afterEach(() => {
  for (const l of launchers.splice(0)) l.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(opts: { startGraceMs?: number } = {}) {
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
});
