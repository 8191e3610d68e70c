import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processStartTime } from '../../executors/process.ts';
import { DataDirLockedError, lockDataDir } from './data-dir-lock.ts';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'meson-lock-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function sleeper() {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  await new Promise((r) => child.once('spawn', r));
  return child;
}

describe('lockDataDir', () => {
  it('refuses a directory whose owner is alive, naming it, and frees it on release', async () => {
    const dir = dataDir();
    const owner = await sleeper();
    writeFileSync(join(dir, 'server.lock'), `${owner.pid} ${processStartTime(owner.pid!)}\n`);
    expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
    expect(() => lockDataDir(dir)).toThrow(new RegExp(`in use by process ${owner.pid}`));
    rmSync(join(dir, 'server.lock'));
    const release = lockDataDir(dir);
    expect(readFileSync(join(dir, 'server.lock'), 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+\\n$`));
    release();
  });

  it('takes over the lock of an owner killed with SIGKILL at once, while it is still a zombie', async () => {
    const dir = dataDir();
    const owner = await sleeper();
    const pid = owner.pid!;
    // the pid alone (as a lock written before start times were recorded): only the zombie state tells
    writeFileSync(join(dir, 'server.lock'), `${pid}\n`);
    owner.kill('SIGKILL');
    // no await from here: this process (its parent) cannot reap it, so it stays a zombie
    const end = Date.now() + 5000;
    while (!/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')) && Date.now() < end);
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).toMatch(/\) Z /);
    const release = lockDataDir(dir);
    release();
  });

  it('takes over a lock whose pid now belongs to another process (pid reuse)', async () => {
    const dir = dataDir();
    const other = await sleeper();
    // the recorded owner had this pid but started at another time
    writeFileSync(join(dir, 'server.lock'), `${other.pid} 1\n`);
    const release = lockDataDir(dir);
    expect(readFileSync(join(dir, 'server.lock'), 'utf8')).toMatch(new RegExp(`^${process.pid} `));
    release();
  });
});
