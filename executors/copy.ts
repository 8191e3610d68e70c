// Copy steps read and write local paths that a run's parameters may name, and whoever starts a
// run is not the workflow's author: every local path must resolve — `..` and symbolic links
// followed — inside one of the copy roots (docs/executor-protocol.md, "Copy roots"); an s3:// URI
// must lie under one of the object store roots (s3-uri.ts).
import { cpSync, lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StepSetupError } from './errors.ts';
import { confineS3Uri, formatS3, isS3Uri, type S3Location } from './s3-uri.ts';

function outside(field: string, uri: string, roots: readonly string[]): StepSetupError {
  return new StepSetupError(
    'EXECUTOR_COPY_OUTSIDE_ROOTS',
    `copy.${field}: ${JSON.stringify(uri.slice(0, 200))} is outside the copy roots (${roots.join(', ')}); --copy-root adds a root`,
  );
}

/** The real path of `p` (absolute, normalized): symbolic links of its existing part resolved. */
export function realpathOfExisting(p: string): string {
  const rest: string[] = [];
  let cur = p;
  for (;;) {
    try {
      return join(realpathSync(cur), ...rest.reverse());
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw err;
      const parent = dirname(cur);
      if (parent === cur) return p;
      rest.push(basename(cur));
      cur = parent;
    }
  }
}

/** Whether the real path `real` is one of `roots` or below one. */
export function within(real: string, roots: readonly string[]): boolean {
  return roots.some((r) => real === r || real.startsWith(r.endsWith(sep) ? r : r + sep));
}

/** The real paths of the roots; the first (the base of relative paths) is created if missing. */
export function realRoots(roots: readonly string[]): string[] {
  if (roots[0] !== undefined) mkdirSync(roots[0], { recursive: true });
  return roots.map((r) => realpathOfExisting(resolve(r)));
}

/**
 * The absolute real path a copy step's `from`/`to` names, refused unless inside `roots` (real
 * paths, see realRoots): relative paths are taken from the first root; `file://` URIs must have no
 * host (or localhost) and no percent-encoded `.` or `/`; any other scheme is refused
 * (EXECUTOR_COPY_SCHEME: the local executor copies local files only).
 */
export function confineCopyPath(uri: string, roots: readonly string[], field: 'from' | 'to'): string {
  if (uri === '' || uri.includes('\0'))
    throw new StepSetupError(
      'EXECUTOR_COPY_PATH',
      `copy.${field}: expected a path, got an empty or NUL-holding string`,
    );
  const base = roots[0];
  if (base === undefined) throw outside(field, uri, roots);
  let path: string;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri)?.[1];
  if (scheme === undefined) {
    path = isAbsolute(uri) ? resolve(uri) : resolve(base, uri);
  } else if (scheme.toLowerCase() === 'file') {
    if (/%(2e|2f|5c)/i.test(uri))
      throw new StepSetupError(
        'EXECUTOR_COPY_PATH',
        `copy.${field}: percent-encoded ".", "/" or "\\" in a file:// URI are refused`,
      );
    let url: URL;
    try {
      url = new URL(uri);
    } catch (err) {
      throw new StepSetupError('EXECUTOR_COPY_PATH', `copy.${field}: not a valid file:// URI`, {
        cause: err,
      });
    }
    if (url.host !== '' && url.host !== 'localhost')
      throw new StepSetupError(
        'EXECUTOR_COPY_PATH',
        `copy.${field}: file:// URIs must name a local file (file:///path), not host "${url.host}"`,
      );
    try {
      path = resolve(fileURLToPath(url));
    } catch (err) {
      throw new StepSetupError('EXECUTOR_COPY_PATH', `copy.${field}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  } else {
    throw new StepSetupError(
      'EXECUTOR_COPY_SCHEME',
      `copy.${field}: copy steps copy local paths, file:// and s3:// URIs, not ${scheme}:`,
    );
  }
  const real = realpathOfExisting(path);
  if (!within(real, roots)) throw outside(field, uri, roots);
  return real;
}

/**
 * A copy step's `from`/`to` as planned: the confined real path of a local path or `file://` URI
 * (confineCopyPath), or the canonical form (`s3://bucket/key`) of an s3:// URI under one of
 * `s3Roots` (confineS3Uri).
 */
export function confineCopyEnd(
  uri: string,
  roots: readonly string[],
  s3Roots: readonly S3Location[],
  field: 'from' | 'to',
): string {
  if (isS3Uri(uri)) return formatS3(confineS3Uri(uri, s3Roots, field));
  return confineCopyPath(uri, roots, field);
}

/**
 * Copies `from` to `to` (recursively), both already confined. Entries of a copied tree are checked
 * too: a symbolic link must point inside the roots, a destination must stay inside them (a
 * symbolic link in the destination tree does not redirect the write), and FIFOs, sockets and
 * devices are refused (reading them could block or never end).
 */
export function confinedCopy(from: string, to: string, roots: readonly string[]): void {
  cpSync(from, to, {
    recursive: true,
    filter: (src, dest) => {
      const st = lstatSync(src);
      if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = realpathSync(src);
        } catch {
          throw new StepSetupError('EXECUTOR_COPY_PATH', `copy: ${src} is a dangling symbolic link`);
        }
        if (!within(target, roots)) throw outside('from', src, roots);
      } else if (!st.isFile() && !st.isDirectory()) {
        throw new StepSetupError('EXECUTOR_COPY_PATH', `copy: ${src} is not a regular file or directory`);
      }
      if (!within(realpathOfExisting(dest), roots)) throw outside('to', dest, roots);
      return true;
    },
  });
}
