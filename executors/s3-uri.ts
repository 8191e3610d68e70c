// `s3://bucket/key` URIs of copy steps, checked before anything reaches the store. A run's
// parameters may name them and whoever starts a run is not the workflow's author, so a URI is
// taken literally (the key is never percent-decoded, nothing is resolved) and refused when it
// could mean something else to another reader: `.`/`..`/empty segments, backslashes, control
// characters, percent-encoded `.`, `/` or `\`, userinfo or a port in the bucket's place, or a
// bucket that is not a valid S3 bucket name. Then it must lie under one of the admin's object
// store roots (`--copy-root s3://bucket/prefix/`): see docs/executor-protocol.md, "Copy roots".
import { StepSetupError } from './errors.ts';

/** A checked `s3://` URI: `key` ends with `/` for a prefix (a "directory" of objects), "" for a whole bucket. */
export interface S3Location {
  bucket: string;
  key: string;
}

/** The longest object key S3 accepts (UTF-8 bytes). */
export const S3_MAX_KEY_BYTES = 1024;

/** Whether `uri` has the s3 scheme (any case: the scheme of a URI is case-insensitive, RFC 3986). */
export function isS3Uri(uri: string): boolean {
  return /^s3:/i.test(uri);
}

/** Why `name` is not a valid S3 bucket name (general purpose buckets), or undefined. */
export function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'a bucket name has 3 to 63 characters';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name))
    return 'a bucket name has lowercase letters, digits, "." and "-", and starts and ends with a letter or digit';
  if (name.includes('..')) return 'a bucket name has no ".."';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'a bucket name is not an IP address';
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name) || /(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name))
    return 'a bucket name does not use a prefix or suffix S3 reserves';
  return undefined;
}

/** Why `key` (an object key or a relative part of one) is refused, or undefined. */
export function keyProblem(key: string, opts: { prefix?: boolean } = {}): string | undefined {
  if (/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(key))
    return 'the key holds an unpaired UTF-16 surrogate';
  if (Buffer.byteLength(key) > S3_MAX_KEY_BYTES) return `a key has at most ${S3_MAX_KEY_BYTES} bytes`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f-\u009f]/.test(key)) return 'the key holds a NUL or control character';
  if (key.includes('\\')) return 'the key holds a backslash';
  // %2e %2f %5c, also encoded again (%252e): another reader could decode them into "..", "/" or "\"
  if (/%(25)*(2e|2f|5c)/i.test(key)) return 'the key holds a percent-encoded ".", "/" or "\\"';
  if (key === '') return undefined;
  const segments = key.split('/');
  // a prefix ends with "/": its last segment is empty by design
  if (opts.prefix && key.endsWith('/')) segments.pop();
  if (key.startsWith('/')) return 'the key starts with "/" (an empty segment)';
  for (const s of segments) {
    if (s === '') return 'the key has an empty segment ("//")';
    if (s === '.' || s === '..') return `the key has a "${s}" segment`;
  }
  return undefined;
}

function bad(field: string, uri: string, why: string, cause?: unknown): StepSetupError {
  return new StepSetupError(
    'EXECUTOR_COPY_PATH',
    `${field}: ${JSON.stringify(uri.slice(0, 200))} is not a valid s3:// URI: ${why} (expected s3://bucket/key, or s3://bucket/prefix/ for a prefix)`,
    cause === undefined ? undefined : { cause },
  );
}

/**
 * Parses `s3://bucket/key` literally: the bucket is everything between `//` and the next `/`, the
 * key everything after it, not decoded. `field` names the field in errors (`copy.from`).
 * @throws StepSetupError EXECUTOR_COPY_PATH naming the field and what was expected.
 */
export function parseS3Uri(uri: string, field: string): S3Location {
  const m = /^s3:\/\/([^/]*)\/(.*)$/is.exec(uri);
  if (!m) {
    if (/^s3:\/\/[^/]*$/i.test(uri)) return parseS3Uri(`${uri}/`, field); // s3://bucket: the whole bucket
    throw bad(field, uri, 'expected "s3://" then the bucket name');
  }
  const bucket = m[1] as string;
  const key = m[2] as string;
  if (/[@:]/.test(bucket))
    throw bad(field, uri, 'the bucket is followed by the key, never userinfo ("@") or a port (":")');
  const bucketBad = bucketNameProblem(bucket);
  if (bucketBad) throw bad(field, uri, `bucket "${bucket.slice(0, 80)}": ${bucketBad}`);
  const keyBad = keyProblem(key, { prefix: true });
  if (keyBad) throw bad(field, uri, keyBad);
  return { bucket, key };
}

export function isPrefix(loc: S3Location): boolean {
  return loc.key === '' || loc.key.endsWith('/');
}

export function formatS3(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.key}`;
}

/**
 * An admin's object store root (`--copy-root s3://bucket/prefix/`), checked like a step's URI;
 * a prefix without its final `/` gets one (`s3://b/data` allows `data/...`, not `data-other`).
 * @throws Error naming the flag.
 */
export function parseS3Root(uri: string, flag = '--copy-root'): S3Location {
  let loc: S3Location;
  try {
    loc = parseS3Uri(uri, flag);
  } catch (err) {
    throw new Error((err as Error).message, { cause: err });
  }
  return isPrefix(loc) ? loc : { bucket: loc.bucket, key: `${loc.key}/` };
}

/** Whether `loc` (checked by parseS3Uri) lies under one of `roots`. */
export function withinS3Roots(loc: S3Location, roots: readonly S3Location[]): boolean {
  return roots.some((r) => r.bucket === loc.bucket && loc.key.startsWith(r.key));
}

/**
 * The checked location a copy step's `from`/`to` names, refused unless under one of `roots`.
 * @throws StepSetupError EXECUTOR_COPY_PATH (malformed) or EXECUTOR_COPY_OUTSIDE_ROOTS.
 */
export function confineS3Uri(uri: string, roots: readonly S3Location[], field: 'from' | 'to'): S3Location {
  const loc = parseS3Uri(uri, `copy.${field}`);
  if (!withinS3Roots(loc, roots)) {
    const allowed = roots.length === 0 ? 'none is configured' : roots.map(formatS3).join(', ');
    throw new StepSetupError(
      'EXECUTOR_COPY_OUTSIDE_ROOTS',
      `copy.${field}: ${JSON.stringify(uri.slice(0, 200))} is outside the object store copy roots (${allowed}); --copy-root s3://bucket/prefix/ adds a root`,
    );
  }
  return loc;
}
