// Limits on what a step reports through its files (MESON_OUTPUTS, MESON_LINKS) and on the
// messages recorded for it. A step's outputs are stored with its run, served by the API and read
// by expressions: they are hostile input, so each is bounded, and the files are read with a
// bounded read (never a whole 50 MB file into memory, never a FIFO or /dev/zero behind a symlink).
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { StepSetupError } from './errors.ts';
import type { JsonValue, Link } from './protocol.ts';

export interface StepLimits {
  /** Size of the MESON_OUTPUTS file. */
  outputsBytes: number;
  /** Number of output parameters. */
  outputKeys: number;
  /** Length of an output parameter's name (characters). */
  outputKeyLength: number;
  /** Size of one output value, as JSON (UTF-8 bytes). */
  outputValueBytes: number;
  /** Nesting depth of an output value (lists and objects). */
  outputDepth: number;
  /** Size of the MESON_LINKS file. */
  linksBytes: number;
  /** Number of links. */
  links: number;
  /** Length of a link's URL (characters); names follow outputKeyLength. */
  linkUrlLength: number;
  /** Size of a recorded message (longer ones are cut, marked "… (truncated)"). */
  messageBytes: number;
}

export const DEFAULT_STEP_LIMITS: Readonly<StepLimits> = Object.freeze({
  outputsBytes: 1024 * 1024,
  outputKeys: 1000,
  outputKeyLength: 256,
  outputValueBytes: 256 * 1024,
  outputDepth: 32,
  linksBytes: 64 * 1024,
  links: 100,
  linkUrlLength: 4096,
  messageBytes: 4096,
});

/** Bounds on one copy step. */
export interface CopyLimits {
  /** Bytes one copy may move, all objects and files together. */
  maxBytes: number;
  /** Objects of a prefix copy (files and directories of a local tree uploaded to a prefix). */
  maxObjects: number;
}

export const DEFAULT_COPY_LIMITS: Readonly<CopyLimits> = Object.freeze({
  maxBytes: 10 * 1024 ** 3,
  maxObjects: 10_000,
});

export type StepFileErrorCode =
  | 'EXECUTOR_OUTPUTS_TOO_LARGE'
  | 'EXECUTOR_OUTPUTS_INVALID'
  | 'EXECUTOR_LINKS_TOO_LARGE'
  | 'EXECUTOR_LINKS_INVALID';

/** A step's output or link file breaks a limit or is not what the protocol allows. */
export class StepFileError extends StepSetupError {
  declare readonly code: StepFileErrorCode;
  constructor(code: StepFileErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'StepFileError';
  }
}

export function withLimits(partial: Partial<StepLimits> | undefined): StepLimits {
  return { ...DEFAULT_STEP_LIMITS, ...(partial ?? {}) };
}

/**
 * `name=N,name=N` (the server's --step-limit and MESON_STEP_LIMITS) as a partial StepLimits.
 * Throws with the bad item on unknown names and values that are not positive integers.
 */
export function parseStepLimits(items: string[]): Partial<StepLimits> {
  const out: Partial<StepLimits> = {};
  for (const item of items.flatMap((s) => s.split(',')).map((s) => s.trim())) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    const name = eq > 0 ? item.slice(0, eq) : item;
    if (!Object.hasOwn(DEFAULT_STEP_LIMITS, name)) {
      throw new Error(
        `step limit "${name}": expected one of ${Object.keys(DEFAULT_STEP_LIMITS).join(', ')} as NAME=N`,
      );
    }
    const value = Number(item.slice(eq + 1));
    if (eq <= 0 || !/^\d+$/.test(item.slice(eq + 1)) || !Number.isSafeInteger(value) || value < 1) {
      throw new Error(`step limit ${item}: expected ${name}=N with N a positive integer`);
    }
    out[name as keyof StepLimits] = value;
  }
  return out;
}

const TRUNCATED = '… (truncated)';

/** Cuts `message` to at most `maxBytes` UTF-8 bytes (never inside a character). */
export function truncateMessage(
  message: string,
  maxBytes: number = DEFAULT_STEP_LIMITS.messageBytes,
): string {
  if (Buffer.byteLength(message) <= maxBytes) return message;
  const keep = Buffer.from(message).subarray(0, Math.max(0, maxBytes - Buffer.byteLength(TRUNCATED)));
  // a cut multi-byte character decodes as U+FFFD: drop it
  return `${keep.toString('utf8').replace(/\uFFFD+$/, '')}${TRUNCATED}`;
}

const CHUNK = 64 * 1024;

/**
 * Reads a step's file as UTF-8 text, at most `maxBytes`: undefined when it does not exist.
 * Refuses symbolic links (the step could point it at /dev/zero or another attempt's files),
 * anything but a regular file (a FIFO would block the executor), files over the limit (by their
 * size first, and by what is actually read, should the file grow), non-UTF-8 and NUL bytes.
 */
export function readStepFile(
  file: string,
  maxBytes: number,
  what: { label: string; limit: string; tooLarge: StepFileErrorCode; invalid: StepFileErrorCode },
): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP')
      throw new StepFileError(what.invalid, `${what.label} must be a regular file, not a symbolic link`, {
        cause: err,
      });
    throw new StepFileError(what.invalid, `${what.label} cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new StepFileError(what.invalid, `${what.label} must be a regular file`);
    const tooLarge = (size: string) =>
      new StepFileError(
        what.tooLarge,
        `${what.label} is ${size}, over the limit ${what.limit}=${maxBytes} bytes`,
      );
    if (st.size > maxBytes) throw tooLarge(`${st.size} bytes`);
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, maxBytes + 1 - total));
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > maxBytes) throw tooLarge(`more than ${maxBytes} bytes`);
    }
    const bytes = Buffer.concat(chunks, total);
    if (bytes.includes(0)) {
      throw new StepFileError(what.invalid, `${what.label} holds NUL bytes: expected text, not binary data`);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (err) {
      throw new StepFileError(what.invalid, `${what.label} is not UTF-8 text`, { cause: err });
    }
  } finally {
    closeSync(fd);
  }
}

/** The depth of a JSON value, walked without recursion (a deep value must not overflow the stack). */
function depthOver(value: JsonValue, max: number): boolean {
  const stack: [JsonValue, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) return true;
    for (const c of Array.isArray(v) ? v : Object.values(v)) stack.push([c, d + 1]);
  }
  return false;
}

/** Throws StepFileError when `outputs` breaks a limit (count, name length, value size, depth). */
export function checkOutputs(outputs: Record<string, JsonValue>, limits: StepLimits): void {
  const keys = Object.keys(outputs);
  const bad = (msg: string, code: StepFileErrorCode = 'EXECUTOR_OUTPUTS_TOO_LARGE') => {
    throw new StepFileError(code, msg);
  };
  if (keys.length > limits.outputKeys)
    bad(`outputs: ${keys.length} parameters, over the limit outputKeys=${limits.outputKeys}`);
  for (const k of keys) {
    if (k.length > limits.outputKeyLength)
      bad(
        `outputs: the name "${k.slice(0, 40)}…" has ${k.length} characters, over the limit outputKeyLength=${limits.outputKeyLength}`,
      );
    const v = outputs[k] as JsonValue;
    if (depthOver(v, limits.outputDepth))
      bad(`outputs.${k}: nested deeper than the limit outputDepth=${limits.outputDepth}`);
    const size = Buffer.byteLength(JSON.stringify(v) ?? '');
    if (size > limits.outputValueBytes)
      bad(`outputs.${k}: ${size} bytes, over the limit outputValueBytes=${limits.outputValueBytes}`);
  }
}

/** Throws StepFileError when `links` break a limit, or a URL is not http(s) (links are shown in UIs). */
export function checkLinks(links: Link[], limits: StepLimits): void {
  if (links.length > limits.links)
    throw new StepFileError(
      'EXECUTOR_LINKS_TOO_LARGE',
      `links: ${links.length} links, over the limit links=${limits.links}`,
    );
  links.forEach((l, i) => {
    if (l.name.length > limits.outputKeyLength || l.url.length > limits.linkUrlLength)
      throw new StepFileError(
        'EXECUTOR_LINKS_TOO_LARGE',
        `links[${i}]: the name or URL is longer than the limits outputKeyLength=${limits.outputKeyLength} / linkUrlLength=${limits.linkUrlLength}`,
      );
    if (!/^https?:\/\//i.test(l.url))
      throw new StepFileError(
        'EXECUTOR_LINKS_INVALID',
        `links[${i}] (${l.name.slice(0, 40)}): expected an http:// or https:// URL`,
      );
  });
}
