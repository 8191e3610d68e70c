// Copy steps to and from S3 and S3-compatible object stores: file → s3, s3 → file, s3 → s3
// (server-side CopyObject; streamed through the executor above CopyObject's 5 GiB limit), one
// object or a prefix of them. Both ends are confined beforehand (copy.ts, s3-uri.ts); keys a
// listing returns are checked again, as anyone who can write to the bucket chose them.
//
// Nothing is held whole in memory: bodies stream from the source to the destination (a
// multipart upload buffers at most UPLOAD_QUEUE × UPLOAD_PART_BYTES). What one copy may move is
// bounded (CopyLimits): the objects and bytes of a prefix or directory are counted before the
// first byte moves, and bytes are counted again as they stream (an object may grow).
//
// The store's endpoint, region and credentials come from the executor's environment, set by the
// admin (AWS_* variables; docs/executor-protocol.md "Object stores"), never from a step.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  createReadStream,
  createWriteStream,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { realpathOfExisting, within } from './copy.ts';
import { StepSetupError } from './errors.ts';
import type { CopyLimits } from './limits.ts';
import { formatS3, isPrefix, isS3Uri, keyProblem, parseS3Uri, type S3Location } from './s3-uri.ts';

/** The largest object one CopyObject request copies (S3's limit); larger ones are streamed. */
export const COPY_OBJECT_MAX_BYTES = 5 * 1024 ** 3;
/** Multipart upload part size and parts in flight: an upload holds at most their product in memory. */
export const UPLOAD_PART_BYTES = 8 * 1024 * 1024;
export const UPLOAD_QUEUE = 2;

const TRUE = /^(1|true|yes)$/i;

/**
 * The S3 client configuration from the executor's environment: AWS_ENDPOINT_URL_S3 (else
 * AWS_ENDPOINT_URL) for S3-compatible stores, AWS_REGION (else AWS_DEFAULT_REGION, else
 * us-east-1), MESON_S3_FORCE_PATH_STYLE=true for stores without virtual-hosted buckets, static
 * keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, otherwise the SDK's
 * default chain (shared files, web identity, container and instance roles). Checksums are sent
 * and checked only where S3 requires them unless AWS_REQUEST_CHECKSUM_CALCULATION /
 * AWS_RESPONSE_CHECKSUM_VALIDATION say otherwise (many S3-compatible stores reject the others).
 */
export function s3ClientConfig(env: NodeJS.ProcessEnv): S3ClientConfig {
  const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const keyId = env.AWS_ACCESS_KEY_ID;
  const secret = env.AWS_SECRET_ACCESS_KEY;
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: TRUE.test(env.MESON_S3_FORCE_PATH_STYLE ?? ''),
    ...(keyId && secret
      ? {
          credentials: {
            accessKeyId: keyId,
            secretAccessKey: secret,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
    ...(env.AWS_REQUEST_CHECKSUM_CALCULATION ? {} : { requestChecksumCalculation: 'WHEN_REQUIRED' }),
    ...(env.AWS_RESPONSE_CHECKSUM_VALIDATION ? {} : { responseChecksumValidation: 'WHEN_REQUIRED' }),
    maxAttempts: 3,
    // a store that stops answering must not hold the step forever (the step's timeout is the bound)
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 120_000 },
  };
}

/** One end of a copy as planStep leaves it: a confined local real path, or a checked s3:// URI. */
export type CopyEnd = { kind: 'local'; path: string } | { kind: 's3'; loc: S3Location };

export function copyEnd(planned: string): CopyEnd {
  return isS3Uri(planned)
    ? { kind: 's3', loc: parseS3Uri(planned, 'copy') }
    : { kind: 'local', path: planned };
}

export interface S3CopyContext {
  client: S3Client;
  /** Real paths of the local copy roots (realRoots). */
  roots: readonly string[];
  limits: CopyLimits;
  signal?: AbortSignal;
}

/** What a copy moved. */
export interface CopyReport {
  objects: number;
  bytes: number;
}

class Budget {
  objects = 0;
  bytes = 0;
  readonly limits: CopyLimits;
  constructor(limits: CopyLimits) {
    this.limits = limits;
  }
  /** Counts what is about to move; throws before anything moves when it is over a limit. */
  plan(objects: number, bytes: number): void {
    if (objects > this.limits.maxObjects) throw tooMany(objects, this.limits);
    if (bytes > this.limits.maxBytes) throw tooLarge(`${bytes} bytes`, this.limits);
  }
  /** A stream that counts what passes and fails past the byte limit (a source may grow). */
  counter(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        this.bytes += chunk.length;
        if (this.bytes > this.limits.maxBytes)
          done(tooLarge(`more than ${this.limits.maxBytes} bytes`, this.limits));
        else done(null, chunk);
      },
    });
  }
}

function tooLarge(what: string, limits: CopyLimits): StepSetupError {
  return new StepSetupError(
    'EXECUTOR_COPY_TOO_LARGE',
    `copy: ${what} to move, over the limit of ${limits.maxBytes} bytes (--copy-max-bytes, MESON_COPY_MAX_BYTES)`,
  );
}

function tooMany(objects: number, limits: CopyLimits): StepSetupError {
  return new StepSetupError(
    'EXECUTOR_COPY_TOO_MANY_OBJECTS',
    `copy: ${objects === limits.maxObjects + 1 ? 'more than ' + limits.maxObjects : objects} objects or entries to copy, over the limit of ${limits.maxObjects} (--copy-max-objects, MESON_COPY_MAX_OBJECTS)`,
  );
}

/** A store error as a step failure with a stable code (the SDK's error name kept in the message). */
function storeError(err: unknown, what: string): StepSetupError {
  if (err instanceof StepSetupError) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const notFound =
    e.name === 'NoSuchKey' || e.name === 'NotFound' || e.name === 'NoSuchBucket' || status === 404;
  return new StepSetupError(
    notFound ? 'EXECUTOR_COPY_NOT_FOUND' : 'EXECUTOR_COPY_S3',
    `copy: ${what}: ${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${String(e.message ?? err).slice(0, 300)}`,
    { cause: err },
  );
}

async function store<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw storeError(err, what);
  }
}

interface Listed {
  key: string;
  size: number;
}

/** The objects under `prefix`, at most maxObjects (one more and it throws), keys checked. */
async function listPrefix(ctx: S3CopyContext, from: S3Location): Promise<Listed[]> {
  const out: Listed[] = [];
  let token: string | undefined;
  do {
    const page = await store(`listing ${formatS3(from)}`, () =>
      ctx.client.send(
        new ListObjectsV2Command({
          Bucket: from.bucket,
          Prefix: from.key,
          ...(token ? { ContinuationToken: token } : {}),
          MaxKeys: Math.min(1000, ctx.limits.maxObjects + 1),
        }),
        { abortSignal: ctx.signal },
      ),
    );
    for (const o of page.Contents ?? []) {
      if (o.Key === undefined) continue;
      const rel = o.Key.slice(from.key.length);
      // "dir/" markers of consoles and tools hold no data
      if (rel === '' || (rel.endsWith('/') && (o.Size ?? 0) === 0)) continue;
      const bad = keyProblem(rel);
      if (bad)
        throw new StepSetupError(
          'EXECUTOR_COPY_PATH',
          `copy.from: the object ${JSON.stringify(o.Key.slice(0, 200))} under ${formatS3(from)} is refused: ${bad}`,
        );
      out.push({ key: o.Key, size: o.Size ?? 0 });
      if (out.length > ctx.limits.maxObjects) throw tooMany(out.length, ctx.limits);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  if (out.length === 0)
    throw new StepSetupError('EXECUTOR_COPY_NOT_FOUND', `copy.from: no object under ${formatS3(from)}`);
  return out;
}

async function objectSize(ctx: S3CopyContext, loc: S3Location): Promise<number> {
  const head = await store(`reading ${formatS3(loc)}`, () =>
    ctx.client.send(new HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }), { abortSignal: ctx.signal }),
  );
  return head.ContentLength ?? 0;
}

async function getBody(ctx: S3CopyContext, loc: S3Location): Promise<Readable> {
  const res = await store(`reading ${formatS3(loc)}`, () =>
    ctx.client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }), { abortSignal: ctx.signal }),
  );
  if (!res.Body) throw new StepSetupError('EXECUTOR_COPY_S3', `copy: ${formatS3(loc)} has no body`);
  return res.Body as Readable;
}

/** Streams `body` to `to` as a (multipart, when large) upload, counted against the budget. */
async function upload(ctx: S3CopyContext, budget: Budget, body: Readable, to: S3Location): Promise<void> {
  const counted = body.pipe(budget.counter());
  // an error of the source (over the limit, a read error) must end the upload
  let failed: unknown;
  body.on('error', (err) => {
    failed = err;
    counted.destroy(err);
  });
  counted.on('error', (err) => {
    failed ??= err;
  });
  const up = new Upload({
    client: ctx.client,
    params: { Bucket: to.bucket, Key: to.key, Body: counted },
    partSize: UPLOAD_PART_BYTES,
    queueSize: UPLOAD_QUEUE,
    leavePartsOnError: false,
  });
  const abort = () => void up.abort();
  ctx.signal?.addEventListener('abort', abort, { once: true });
  try {
    await up.done();
    if (failed) throw failed;
  } catch (err) {
    body.destroy();
    throw storeError(failed ?? err, `writing ${formatS3(to)}`);
  } finally {
    ctx.signal?.removeEventListener('abort', abort);
  }
}

/** Streams `body` into the local file `path` (confined) through a temporary file renamed into place. */
async function writeLocal(ctx: S3CopyContext, budget: Budget, body: Readable, path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  confineLocal(path, ctx.roots);
  const tmp = join(
    dirname(path),
    `.${basename(path).slice(0, 200)}.meson-part-${randomBytes(6).toString('hex')}`,
  );
  // O_EXCL: never through a symbolic link planted at the temporary name
  const fd = openSync(
    tmp,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o644,
  );
  try {
    await pipeline(body, budget.counter(), createWriteStream('', { fd }), { signal: ctx.signal });
    // rename replaces a symbolic link at `path`, it does not write through it
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw storeError(err, `writing ${path}`);
  }
}

function confineLocal(path: string, roots: readonly string[]): void {
  if (!within(realpathOfExisting(path), roots))
    throw new StepSetupError('EXECUTOR_COPY_OUTSIDE_ROOTS', `copy.to: ${path} is outside the copy roots`);
}

/** A local regular file opened for reading, never through a symbolic link, never a FIFO or device. */
function openLocalFile(path: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    throw new StepSetupError('EXECUTOR_COPY_PATH', `copy.from: ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new StepSetupError('EXECUTOR_COPY_PATH', `copy.from: ${path} is not a regular file or directory`);
  }
  return { fd, size: st.size };
}

/** The files of a local tree with their keys relative to it, checked like confinedCopy checks entries. */
function walkLocal(top: string, ctx: S3CopyContext): { path: string; rel: string; size: number }[] {
  const files: { path: string; rel: string; size: number }[] = [];
  let entries = 0;
  const stack: [string, string][] = [[top, '']];
  while (stack.length > 0) {
    const [dir, rel] = stack.pop() as [string, string];
    for (const name of readdirSync(dir).sort()) {
      if (++entries > ctx.limits.maxObjects) throw tooMany(entries, ctx.limits);
      const path = join(dir, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      let st = lstatSync(path);
      let real = path;
      if (st.isSymbolicLink()) {
        try {
          real = realpathSync(path);
        } catch {
          throw new StepSetupError('EXECUTOR_COPY_PATH', `copy: ${path} is a dangling symbolic link`);
        }
        if (!within(real, ctx.roots))
          throw new StepSetupError(
            'EXECUTOR_COPY_OUTSIDE_ROOTS',
            `copy.from: ${path} links outside the copy roots`,
          );
        st = statSync(real);
        if (!st.isFile())
          throw new StepSetupError('EXECUTOR_COPY_PATH', `copy: ${path} links to a directory (not followed)`);
      }
      if (st.isDirectory()) stack.push([path, r]);
      else if (st.isFile()) files.push({ path: real, rel: r, size: st.size });
      else throw new StepSetupError('EXECUTOR_COPY_PATH', `copy: ${path} is not a regular file or directory`);
    }
  }
  return files;
}

function keyUnder(prefix: S3Location, rel: string, field: string): S3Location {
  const key = `${prefix.key}${rel}`;
  const bad = keyProblem(key);
  if (bad)
    throw new StepSetupError(
      'EXECUTOR_COPY_PATH',
      `${field}: ${JSON.stringify(rel.slice(0, 200))} cannot be a key under ${formatS3(prefix)}: ${bad}`,
    );
  return { bucket: prefix.bucket, key };
}

function needPrefix(field: string, what: string): StepSetupError {
  return new StepSetupError(
    'EXECUTOR_COPY_PATH',
    `copy.${field}: ${what} copies to a prefix or directory: end copy.${field} with "/"`,
  );
}

/** The local path of one object under a prefix: `rel`'s segments below `dir`, confined. */
function localUnder(dir: string, rel: string, roots: readonly string[]): string {
  const path = join(dir, ...rel.split('/'));
  if (!path.startsWith(dir.endsWith(sep) ? dir : dir + sep))
    throw new StepSetupError('EXECUTOR_COPY_PATH', `copy: ${rel}`);
  confineLocal(path, roots);
  return path;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Copies between a local path and an object store, or between two store locations. `toWasDir`:
 * the step's `to` ended with "/" (a local directory to copy into).
 */
export async function copyWithStore(
  from: CopyEnd,
  to: CopyEnd,
  ctx: S3CopyContext,
  toWasDir = false,
): Promise<CopyReport> {
  const budget = new Budget(ctx.limits);
  if (from.kind === 'local' && to.kind === 'local')
    throw new StepSetupError('EXECUTOR_BAD_STEP', 'copy: local copies are done by confinedCopy');
  if (from.kind === 'local' && to.kind === 's3') {
    if (isDirectory(from.path)) {
      if (!isPrefix(to.loc)) throw needPrefix('to', 'a directory');
      const files = walkLocal(from.path, ctx);
      const targets = files.map((f) => keyUnder(to.loc, f.rel, 'copy.from'));
      budget.plan(
        files.length,
        files.reduce((n, f) => n + f.size, 0),
      );
      for (const [i, f] of files.entries()) {
        const { fd } = openLocalFile(f.path);
        await upload(ctx, budget, createReadStream('', { fd }), targets[i] as S3Location);
      }
      return { objects: files.length, bytes: budget.bytes };
    }
    const { fd, size } = openLocalFile(from.path);
    try {
      budget.plan(1, size);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    const target = isPrefix(to.loc) ? keyUnder(to.loc, basename(from.path), 'copy.from') : to.loc;
    await upload(ctx, budget, createReadStream('', { fd }), target);
    return { objects: 1, bytes: budget.bytes };
  }
  if (from.kind === 's3' && to.kind === 'local') {
    if (isPrefix(from.loc)) {
      const objects = await listPrefix(ctx, from.loc);
      budget.plan(
        objects.length,
        objects.reduce((n, o) => n + o.size, 0),
      );
      const paths = objects.map((o) => localUnder(to.path, o.key.slice(from.loc.key.length), ctx.roots));
      for (const [i, o] of objects.entries())
        await writeLocal(
          ctx,
          budget,
          await getBody(ctx, { bucket: from.loc.bucket, key: o.key }),
          paths[i] as string,
        );
      return { objects: objects.length, bytes: budget.bytes };
    }
    budget.plan(1, await objectSize(ctx, from.loc));
    const name = basename(from.loc.key);
    const path = toWasDir || isDirectory(to.path) ? localUnder(to.path, name, ctx.roots) : to.path;
    await writeLocal(ctx, budget, await getBody(ctx, from.loc), path);
    return { objects: 1, bytes: budget.bytes };
  }
  if (from.kind === 's3' && to.kind === 's3') {
    const pairs: { src: S3Location; dst: S3Location; size: number }[] = [];
    if (isPrefix(from.loc)) {
      if (!isPrefix(to.loc)) throw needPrefix('to', 'a prefix');
      for (const o of await listPrefix(ctx, from.loc))
        pairs.push({
          src: { bucket: from.loc.bucket, key: o.key },
          dst: keyUnder(to.loc, o.key.slice(from.loc.key.length), 'copy.from'),
          size: o.size,
        });
    } else {
      const dst = isPrefix(to.loc) ? keyUnder(to.loc, basename(from.loc.key), 'copy.from') : to.loc;
      pairs.push({ src: from.loc, dst, size: await objectSize(ctx, from.loc) });
    }
    budget.plan(
      pairs.length,
      pairs.reduce((n, p) => n + p.size, 0),
    );
    for (const p of pairs) {
      if (p.size <= COPY_OBJECT_MAX_BYTES) {
        // server-side: no byte passes through the executor
        await store(`copying ${formatS3(p.src)} to ${formatS3(p.dst)}`, () =>
          ctx.client.send(
            new CopyObjectCommand({
              Bucket: p.dst.bucket,
              Key: p.dst.key,
              CopySource: `${p.src.bucket}/${p.src.key.split('/').map(encodeURIComponent).join('/')}`,
            }),
            { abortSignal: ctx.signal },
          ),
        );
        budget.bytes += p.size;
      } else {
        await upload(ctx, budget, await getBody(ctx, p.src), p.dst);
      }
    }
    return { objects: pairs.length, bytes: budget.bytes };
  }
  throw new StepSetupError('EXECUTOR_BAD_STEP', 'copy: unknown ends');
}

/** A client for the executor's environment (one per copy step). */
export function s3ClientFor(env: NodeJS.ProcessEnv): S3Client {
  return new S3Client(s3ClientConfig(env));
}
