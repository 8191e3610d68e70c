// One controller per data directory: two servers (or a server and `mesonctl run --data-dir`) on
// the same store would each reconcile every run and launch its steps twice. The lock is a file
// holding the owner's pid, created exclusively; a lock whose process is gone (kill -9, a crash)
// is stale and taken over.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class DataDirLockedError extends Error {
  readonly code = 'STANDALONE_DATA_DIR_LOCKED';
  constructor(dir: string, pid: number) {
    super(
      `data directory ${dir} is in use by process ${pid} (another mesonctl server or run); stop it or use another --data-dir`,
    );
    this.name = 'DataDirLockedError';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock of `dir` for this process; returns its release. Throws DataDirLockedError. */
export function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'server.lock');
  for (let tries = 0; tries < 3; tries++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSync(file, 'utf8').trim());
    // this very process (tests restart a standalone in-process) or a dead owner: take it over
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner))
      throw new DataDirLockedError(dir, owner);
    rmSync(file, { force: true });
  }
  throw new Error(`cannot lock data directory ${dir}`);
}
