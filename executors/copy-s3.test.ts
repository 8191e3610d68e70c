import { describe, expect, it } from 'vitest';
import { copyEnd, s3ClientConfig } from './copy-s3.ts';

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
});
