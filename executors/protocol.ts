// The executor protocol: the files through which a launcher and the executor program talk,
// shared by both sides (see docs/executor-protocol.md). Everything lives in one attempt
// directory, created by the launcher, one per (run, step instance, attempt, launch id):
//
//   task.json     written by the launcher before it starts the executor (TaskFile)
//   claim         created exclusively (hard link, with its content) by whoever claims the attempt first: the executor
//                 when it starts, or a recovering controller that decided the executor never
//                 started (fencing: a late executor finds the claim taken and exits untouched)
//   status.json   the executor's state (ExecutorStatus), replaced atomically (write + rename)
//   stdout.log, stderr.log   the step's output
//   outputs, links           files the step may write (named by MESON_OUTPUTS / MESON_LINKS)
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { CopyLimits, StepLimits } from './limits.ts';
import type { SparkSubmitSettings } from './spark.ts';

export const TASK_FILE = 'task.json';
export const STATUS_FILE = 'status.json';
export const CLAIM_FILE = 'claim';
export const STDOUT_FILE = 'stdout.log';
export const STDERR_FILE = 'stderr.log';
export const OUTPUTS_FILE = 'outputs';
export const LINKS_FILE = 'links';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** The step as the executor needs it: the engine's resolved step (type plus its typed block). */
export interface ExecutorStep {
  name: string;
  type: 'shell' | 'container' | 'spark' | 'copy' | 'subworkflow' | 'noop';
  /**
   * `script` for `/bin/sh -c`; `env` (the values of the script's `${}`, named MESON_V_<n>) must be
   * in the shell's environment: the script refers to them, their text is never part of it.
   */
  shell?: { script: string; env?: Record<string, string> };
  container?: { image: string; command?: string[]; args?: string[]; env?: { name: string; value: string }[] };
  spark?: {
    jobClass?: string;
    mainApplication?: string;
    args?: string[];
    conf?: Record<string, string | number | boolean>;
    driverMemory?: string;
    executorMemory?: string;
    executors?: number;
  };
  copy?: { from: string; to: string };
  parameters?: Record<string, JsonValue>;
}

export interface TaskFile {
  launchId: string;
  namespace: string;
  run: string;
  workflow: string;
  instance: string;
  attempt: number;
  step: ExecutorStep;
  /** Milestones the launcher knows (epoch ms). */
  queuedAt?: number;
  launchedAt: number;
  /**
   * Working directory of the step's process, shared by every step (`mesonctl run`: the current
   * directory). Default: the attempt's own `work/` directory, which is also the step's HOME.
   */
  cwd?: string;
  /** Extra environment for the step (set by the server's operator, not by workflows). */
  env?: Record<string, string>;
  /**
   * Names of variables of the executor's environment that steps also get (the server's
   * --step-env-passthrough); everything else of the server's environment is withheld.
   */
  envPassthrough?: string[];
  /**
   * Where copy steps may read and write: absolute directories (local paths must resolve, symbolic
   * links followed, inside one of them; the first is the base of relative paths) and object store
   * prefixes `s3://bucket/prefix/` (s3:// URIs must lie under one of them).
   */
  copyRoots?: string[];
  /** Bounds on a copy to or from an object store (executors/copy-s3.ts; defaults there). */
  copyLimits?: Partial<CopyLimits>;
  /** Limits on outputs, links and messages (executors/limits.ts; defaults there). */
  limits?: Partial<StepLimits>;
  /**
   * A spark step on Kubernetes (the Pod launcher): spark-submit runs in client mode against the
   * Pod's cluster with these settings, which the step may not set (executors/spark.ts).
   */
  sparkSubmit?: SparkSubmitSettings;
}

export type ExecutorPhase = 'Running' | 'Succeeded' | 'Failed';

export interface Link {
  name: string;
  url: string;
}

export interface ContainerRef {
  /** The runtime's client as the executor ran it (a path to docker or podman). */
  runtime: string;
  name: string;
}

export interface ExecutorStatus {
  launchId: string;
  /** The executor's own pid (the process the controller signals to kill the step). */
  pid: number;
  /**
   * The step's process (shell, container runtime, spark-submit), when one was started. It leads
   * its own process group (pgid = childPid): recorded BEFORE the step's command starts (the child
   * waits at a gate until then), so a launcher that finds the executor dead can kill the group.
   */
  childPid?: number;
  /** The start time of childPid (/proc/<pid>/stat field 22, where /proc exists): pids are reused. */
  childStartTime?: string;
  /** A container step's container, recorded with childPid: killing its client does not stop it. */
  container?: ContainerRef;
  phase: ExecutorPhase;
  exitCode?: number;
  signal?: string;
  message?: string;
  outputs?: Record<string, JsonValue>;
  links?: Link[];
  milestones: { queued?: number; launched?: number; running?: number; finished?: number };
}

/** Replaces `file` atomically: readers see the old or the new content, never a torn write. */
export function writeFileAtomic(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, file);
}

export function writeStatus(dir: string, status: ExecutorStatus): void {
  writeFileAtomic(join(dir, STATUS_FILE), `${JSON.stringify(status)}\n`);
}

/** The default cap of readStatus: well above what the executor writes under the default limits. */
export const STATUS_MAX_BYTES = 16 * 1024 * 1024;

/**
 * The executor's status, or undefined when it has not written one (yet), or the file is not a
 * JSON object or is over `maxBytes` (the step runs as the same user and could replace it: it is
 * read bounded, never through a symbolic link, and its content is checked by the reader).
 */
export function readStatus(dir: string, maxBytes: number = STATUS_MAX_BYTES): ExecutorStatus | undefined {
  let fd: number;
  try {
    fd = openSync(join(dir, STATUS_FILE), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes) return undefined;
    const buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = readSync(fd, buf, got, st.size - got, null);
      if (n === 0) break;
      got += n;
    }
    const value = JSON.parse(buf.subarray(0, got).toString('utf8')) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    const v = value as ExecutorStatus;
    if (typeof v.launchId !== 'string' || typeof v.phase !== 'string') return undefined;
    if (typeof v.milestones !== 'object' || v.milestones === null) v.milestones = {};
    return v;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Claims the attempt: true for the first caller only. The claim file appears with its content
 * in one step (written to a private temp file, then hard-linked to the claim name, which fails
 * if the name exists), so a reader never sees a claim without its owner.
 */
export function claimAttempt(dir: string, who: string): boolean {
  const tmp = join(dir, `.${CLAIM_FILE}.${process.pid}.${Date.now()}`);
  writeFileSync(tmp, `${who}\n`);
  try {
    linkSync(tmp, join(dir, CLAIM_FILE));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    // a file system without hard links: exclusive create, then the content (readers treat an
    // empty claim as "being claimed" and look again)
    return claimExclusive(dir, who);
  } finally {
    rmSync(tmp, { force: true });
  }
}

function claimExclusive(dir: string, who: string): boolean {
  let fd: number;
  try {
    fd = openSync(join(dir, CLAIM_FILE), 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, `${who}\n`);
  } finally {
    closeSync(fd);
  }
  return true;
}

export function readClaim(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, CLAIM_FILE), 'utf8').trim();
  } catch {
    return undefined;
  }
}

function parseScalar(raw: string): JsonValue {
  try {
    return JSON.parse(raw) as JsonValue;
  } catch {
    return raw;
  }
}

/**
 * Output parameters as a step writes them: either one JSON object, or `key=value` lines where
 * each value is parsed as JSON when it parses (`n=3` is a number, `s=abc` a string). Blank lines
 * and lines starting with `#` are ignored. Throws with a clear message on anything else.
 */
export function parseOutputs(text: string): Record<string, JsonValue> {
  const trimmed = text.trim();
  if (trimmed === '') return {};
  if (trimmed.startsWith('{')) {
    const value = JSON.parse(trimmed) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new Error('outputs: expected a JSON object');
    }
    return value as Record<string, JsonValue>;
  }
  const out: Record<string, JsonValue> = {};
  trimmed.split('\n').forEach((line, i) => {
    const l = line.trim();
    if (l === '' || l.startsWith('#')) return;
    const eq = l.indexOf('=');
    if (eq <= 0) throw new Error(`outputs line ${i + 1}: expected key=value, got "${l.slice(0, 80)}"`);
    // defineProperty: a key "__proto__" is a name like any other, not the object's prototype
    Object.defineProperty(out, l.slice(0, eq).trim(), {
      value: parseScalar(l.slice(eq + 1).trim()),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  });
  return out;
}

/**
 * Links as a step writes them: a JSON object {name: url}, a JSON array [{name, url}], or
 * `name=url` lines.
 */
export function parseLinks(text: string): Link[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  if (trimmed.startsWith('[')) {
    const value = JSON.parse(trimmed) as unknown;
    if (!Array.isArray(value)) throw new Error('links: expected a JSON array');
    return value.map((v, i) => {
      const o = v as Record<string, unknown>;
      if (typeof o?.name !== 'string' || typeof o?.url !== 'string') {
        throw new Error(`links[${i}]: expected {name, url}`);
      }
      return { name: o.name, url: o.url };
    });
  }
  if (trimmed.startsWith('{')) {
    return Object.entries(JSON.parse(trimmed) as Record<string, unknown>).map(([name, url]) => ({
      name,
      url: String(url),
    }));
  }
  return trimmed
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l, i) => {
      const eq = l.indexOf('=');
      if (eq <= 0) throw new Error(`links line ${i + 1}: expected name=url, got "${l.slice(0, 80)}"`);
      return { name: l.slice(0, eq).trim(), url: l.slice(eq + 1).trim() };
    });
}
