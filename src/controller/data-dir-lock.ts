// One controller per data directory: two servers (or a server and `mesonctl run --data-dir`) on
// the same store would each reconcile every run and launch its steps twice. The lock is a file
// holding the owner's pid and start time, created exclusively; a lock whose process is gone
// (kill -9, a crash) is stale and taken over. "Gone" includes a zombie (killed, not yet reaped by
// its parent: kill(pid, 0) still succeeds right after kill -9) and a live process that merely got
// the same pid later (the start time differs; pid_max is often 32768).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processAlive, processStartTime } from '../../executors/process.ts';

export class DataDirLockedError extends Error {
  readonly code = 'STANDALONE_DATA_DIR_LOCKED';
  constructor(dir: string, pid: number) {
    super(
      `data directory ${dir} is in use by process ${pid} (another mesonctl server or run); stop it or use another --data-dir`,
    );
    this.name = 'DataDirLockedError';
  }
}

/** Takes the lock of `dir` for this process; returns its release. Throws DataDirLockedError. */
export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'server.lock');
  for (let tries = 0; tries < 3; tries++) {
    try {
      const started = processStartTime(process.pid);
      writeFileSync(file, `${process.pid}${started ? ` ${started}` : ''}\n`, { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let content = '';
    try {
      content = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // released meanwhile
      throw err;
    }
    // "<pid> <start time>" (a lock written before start times were recorded: "<pid>")
    const [pidText, started] = content.trim().split(/\s+/);
    const owner = Number(pidText);
    // this very process (tests restart a standalone in-process) or a dead owner: take it over
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner, started))
      throw new DataDirLockedError(dir, owner);
    rmSync(file, { force: true });
  }
  throw new Error(`cannot lock data directory ${dir}`);
}
