import { describe, expect, it } from 'vitest';
import { thrownCode } from '../test/support/error-code.ts';
import { confineCopyEnd } from './copy.ts';
import {
  bucketNameProblem,
  confineS3Uri,
  formatS3,
  keyProblem,
  parseS3Root,
  parseS3Uri,
  type S3Location,
  withinS3Roots,
} from './s3-uri.ts';

const roots: S3Location[] = [parseS3Root('s3://data-bucket/team-a/'), parseS3Root('s3://shared.bucket/in')];

const code = thrownCode;

describe('s3:// URIs', () => {
  it('parses bucket and key literally (the key is never decoded)', () => {
    expect(parseS3Uri('s3://data-bucket/a/b.csv', 'f')).toEqual({ bucket: 'data-bucket', key: 'a/b.csv' });
    expect(parseS3Uri('s3://data-bucket/a/', 'f')).toEqual({ bucket: 'data-bucket', key: 'a/' });
    expect(parseS3Uri('s3://data-bucket/a%20b?x#y', 'f')).toEqual({
      bucket: 'data-bucket',
      key: 'a%20b?x#y',
    });
    expect(parseS3Uri('S3://data-bucket/k', 'f')).toEqual({ bucket: 'data-bucket', key: 'k' });
    expect(parseS3Uri('s3://data-bucket', 'f')).toEqual({ bucket: 'data-bucket', key: '' });
    expect(parseS3Uri('s3://data-bucket/日本/ü', 'f').key).toBe('日本/ü');
    expect(formatS3({ bucket: 'b-1', key: 'x/' })).toBe('s3://b-1/x/');
  });

  it('checks bucket names as S3 does', () => {
    for (const ok of ['abc', 'my.bucket-1', 'a'.repeat(63)])
      expect(bucketNameProblem(ok), ok).toBeUndefined();
    for (const bad of [
      'ab',
      'a'.repeat(64),
      'Data',
      'under_score',
      '-lead',
      'trail-',
      'a..b',
      '192.168.0.1',
      'xn--punycode',
      'bucket-s3alias',
      'b%61d',
      'ünï',
      '',
    ])
      expect(bucketNameProblem(bad), bad).toBeTypeOf('string');
  });

  it('refuses every malformed or ambiguous form with EXECUTOR_COPY_PATH', () => {
    const attacks = [
      // dot segments, raw and percent-encoded, lower and upper case, encoded twice
      's3://data-bucket/team-a/../secret',
      's3://data-bucket/team-a/./x',
      's3://data-bucket/team-a/..',
      's3://data-bucket/team-a/%2e%2e/secret',
      's3://data-bucket/team-a/%2E%2E/secret',
      's3://data-bucket/team-a/.%2e/secret',
      's3://data-bucket/team-a/%252e%252e/secret',
      // encoded slash and backslash
      's3://data-bucket/team-a%2f..%2fsecret',
      's3://data-bucket/team-a/x%2Fy',
      's3://data-bucket/team-a/x%5cy',
      's3://data-bucket/team-a\\..\\secret',
      's3://data-bucket\\team-a/x',
      // empty segments
      's3://data-bucket//team-a/x',
      's3://data-bucket/team-a//x',
      's3://data-bucket/team-a/x//',
      // NUL and control characters
      's3://data-bucket/team-a/x\u0000',
      's3://data-bucket/team-a/x\ny',
      's3://data-bucket/team-a/x\ry',
      's3://data-bucket/team-a/x\u007f',
      's3://data-bucket/team-a/x\u0085',
      's3://data-bucket/team-a/\ud800',
      // userinfo, ports, hosts that are not bucket names
      's3://evil@data-bucket/team-a/x',
      's3://data-bucket@evil/team-a/x',
      's3://data-bucket:443/team-a/x',
      's3://data-bucket:/team-a/x',
      's3://Data-Bucket/team-a/x',
      's3://[::1]/team-a/x',
      's3://127.0.0.1/team-a/x',
      's3://data-bucket.s3.amazonaws.com%2f/team-a/x',
      // not s3://bucket/…
      's3:data-bucket/team-a/x',
      's3:/data-bucket/team-a/x',
      's3:///team-a/x',
      `s3://data-bucket/team-a/${'k'.repeat(1100)}`,
    ];
    for (const uri of attacks) {
      expect(
        code(() => confineS3Uri(uri, roots, 'from')),
        JSON.stringify(uri),
      ).toBe('EXECUTOR_COPY_PATH');
      expect(
        code(() => confineCopyEnd(uri, [], roots, 'to')),
        JSON.stringify(uri),
      ).toBe('EXECUTOR_COPY_PATH');
    }
  });

  it('refuses a well-formed URI outside every root with EXECUTOR_COPY_OUTSIDE_ROOTS', () => {
    const outside = [
      's3://data-bucket/team-b/x',
      's3://data-bucket/team-a', // the root's prefix itself without its "/": another key
      's3://data-bucket/team-ab/x',
      's3://data-bucket/Team-a/x',
      's3://data-bucket/',
      's3://data-bucket',
      's3://other-bucket/team-a/x',
      'S3://data-bucket/team-b/x',
      's3://shared.bucket/input/x', // root "in" means "in/", not every key starting "in"
    ];
    for (const uri of outside) {
      expect(
        code(() => confineS3Uri(uri, roots, 'from')),
        uri,
      ).toBe('EXECUTOR_COPY_OUTSIDE_ROOTS');
      expect(
        code(() => confineCopyEnd(uri, ['/tmp'], roots, 'to')),
        uri,
      ).toBe('EXECUTOR_COPY_OUTSIDE_ROOTS');
    }
    // no root at all: nothing in any bucket
    expect(code(() => confineS3Uri('s3://data-bucket/team-a/x', [], 'to'))).toBe(
      'EXECUTOR_COPY_OUTSIDE_ROOTS',
    );
  });

  it('allows keys and prefixes under a root, in any case of the scheme', () => {
    expect(confineS3Uri('s3://data-bucket/team-a/x/y.csv', roots, 'from')).toEqual({
      bucket: 'data-bucket',
      key: 'team-a/x/y.csv',
    });
    expect(confineS3Uri('s3://data-bucket/team-a/', roots, 'to').key).toBe('team-a/');
    expect(confineCopyEnd('S3://shared.bucket/in/z', [], roots, 'from')).toBe('s3://shared.bucket/in/z');
    expect(withinS3Roots({ bucket: 'shared.bucket', key: 'in/' }, roots)).toBe(true);
    // a whole-bucket root allows the whole bucket
    expect(withinS3Roots({ bucket: 'all-of-it', key: 'any/key' }, [parseS3Root('s3://all-of-it/')])).toBe(
      true,
    );
  });

  it('checks relative keys as listed from a bucket (someone else may have written them)', () => {
    for (const bad of ['../x', 'a/../../x', 'a//b', '/abs', 'a\\b', 'a/%2e%2e', 'x\u0000', '.'])
      expect(keyProblem(bad), bad).toBeTypeOf('string');
    for (const ok of ['a', 'a/b.c', '..a', 'a..', 'a b', '%41']) expect(keyProblem(ok), ok).toBeUndefined();
  });

  it('refuses admin roots that are not valid s3:// URIs, naming the flag', () => {
    expect(() => parseS3Root('s3://Bad_Bucket/x/')).toThrow(/--copy-root: .*bucket/);
    expect(() => parseS3Root('s3://ok-bucket/../x/')).toThrow(/--copy-root: .*"\.\." segment/);
  });
});
