import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyRootItems, parseCopyLimits, parseStepOptions } from './step-options.ts';

describe('step options', () => {
  it('combines the environment variables and the flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meson-opts-'));
    try {
      const opts = parseStepOptions(
        { 'step-env-passthrough': ['AWS_PROFILE'], 'copy-root': ['.'], 'step-limit': ['links=5'] },
        {
          MESON_STEP_ENV_PASSTHROUGH: 'HTTP_PROXY, NO_PROXY',
          MESON_COPY_ROOTS: dir,
          MESON_STEP_LIMITS: 'outputKeys=10',
        },
        dir,
      );
      expect(opts).toEqual({
        envPassthrough: ['HTTP_PROXY', 'NO_PROXY', 'AWS_PROFILE'],
        copyRoots: [dir, join(dir, '.')],
        copyLimits: {},
        stepLimits: { outputKeys: 10, links: 5 },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('refuses bad names, MESON_ variables, missing roots and bad limits, naming the flag', () => {
    expect(() => parseStepOptions({ 'step-env-passthrough': ['A-B'] }, {}, '/')).toThrow(
      /--step-env-passthrough: "A-B" is not a variable name/,
    );
    expect(() => parseStepOptions({ 'step-env-passthrough': ['MESON_API_TOKEN'] }, {}, '/')).toThrow(
      /MESON_\* variables/,
    );
    expect(() => parseStepOptions({ 'copy-root': ['/no/such/dir'] }, {}, '/')).toThrow(
      /--copy-root \/no\/such\/dir: expected an existing directory/,
    );
    expect(() => parseStepOptions({ 'step-limit': ['outputsBytes=0'] }, {}, '/')).toThrow(/--step-limit: /);
  });

  it('takes object store roots (canonical, a final "/" added) and the copy limits', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meson-opts-'));
    try {
      const opts = parseStepOptions(
        { 'copy-root': ['S3://flag-bucket/p'], 'copy-max-objects': '50' },
        {
          MESON_COPY_ROOTS: `${dir}:s3://env-bucket/in/:s3://other-bucket`,
          MESON_COPY_MAX_BYTES: '1048576',
          MESON_COPY_MAX_OBJECTS: '7',
        },
        dir,
      );
      expect(opts.copyRoots).toEqual([
        dir,
        's3://env-bucket/in/',
        's3://other-bucket/',
        's3://flag-bucket/p/',
      ]);
      // the flag wins over the environment
      expect(opts.copyLimits).toEqual({ maxBytes: 1048576, maxObjects: 50 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(copyRootItems('/a:s3://b-b/x/::/c', ':')).toEqual(['/a', 's3://b-b/x/', '/c']);
    expect(copyRootItems('/a;s3://b-b/x/', ';')).toEqual(['/a', 's3://b-b/x/']);
  });
  it('refuses object store roots that are not valid and copy limits that are not positive integers', () => {
    for (const bad of [
      's3://Bad_Bucket/x/',
      's3://ok-bucket/../x/',
      's3://a@ok-bucket/x/',
      's3://ok-bucket/%2e%2e/',
    ])
      expect(() => parseStepOptions({ 'copy-root': [bad] }, {}, '/'), bad).toThrow(/--copy-root /);
    for (const bad of ['0', '-1', '1e9', 'x', '1.5', '99999999999999999999'])
      expect(() => parseCopyLimits({ 'copy-max-bytes': bad }, {}), bad).toThrow(
        /--copy-max-bytes: expected a positive integer/,
      );
    expect(() => parseCopyLimits({}, { MESON_COPY_MAX_OBJECTS: 'lots' })).toThrow(/--copy-max-objects/);
  });
});
