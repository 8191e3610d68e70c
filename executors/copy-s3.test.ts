import { mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { copyEnd, copyWithStore, s3ClientConfig, s3ClientFor } from './copy-s3.ts';
import { DEFAULT_COPY_LIMITS } from './limits.ts';

describe('the object store client', () => {
  it('takes endpoint, region, path style and keys from the executor environment only', () => {
    const c = s3ClientConfig({
      AWS_ENDPOINT_URL: 'http://generic:1',
      AWS_ENDPOINT_URL_S3: 'http://s3-only:2',
      AWS_DEFAULT_REGION: 'eu-west-3',
      AWS_ACCESS_KEY_ID: 'id',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_SESSION_TOKEN: 'token',
      MESON_S3_FORCE_PATH_STYLE: 'TRUE',
    });
    expect(c).toMatchObject({
      endpoint: 'http://s3-only:2',
      region: 'eu-west-3',
      forcePathStyle: true,
      credentials: { accessKeyId: 'id', secretAccessKey: 'secret', sessionToken: 'token' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    expect(s3ClientConfig({ AWS_ENDPOINT_URL: 'http://generic:1', AWS_REGION: 'us-west-2' })).toMatchObject({
      endpoint: 'http://generic:1',
      region: 'us-west-2',
    });
    // nothing set: AWS itself, the SDK's default credential chain, virtual-hosted buckets
    const plain = s3ClientConfig({});
    expect(plain.endpoint).toBeUndefined();
    expect(plain.credentials).toBeUndefined();
    expect(plain.forcePathStyle).toBe(false);
    expect(plain.region).toBe('us-east-1');
    // the admin may ask for checksums on every request
    expect(
      s3ClientConfig({ AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_SUPPORTED' }).requestChecksumCalculation,
    ).toBe(undefined);
  });

  it('reads the ends planStep leaves', () => {
    expect(copyEnd('/data/x')).toEqual({ kind: 'local', path: '/data/x' });
    expect(copyEnd('s3://data-bucket/k/')).toEqual({ kind: 's3', loc: { bucket: 'data-bucket', key: 'k/' } });
  });

  it('fails with a stable code, without hanging or leaving a file, when the store cannot be reached', async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'meson-s3-down-')));
    // port 1 on loopback: nothing listens, the connection is refused
    const client = s3ClientFor({
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:1',
      AWS_ACCESS_KEY_ID: 'k',
      AWS_SECRET_ACCESS_KEY: 's',
      MESON_S3_FORCE_PATH_STYLE: 'true',
    });
    try {
      const copying = copyWithStore(
        { kind: 's3', loc: { bucket: 'data-bucket', key: 'k' } },
        { kind: 'local', path: join(dir, 'out') },
        { client, roots: [dir], limits: DEFAULT_COPY_LIMITS },
      );
      await expect(copying).rejects.toMatchObject({
        code: 'EXECUTOR_COPY_S3',
        message: expect.stringContaining('copy: reading s3://data-bucket/k'),
      });
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      client.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
