import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, limitsFromEnv, MAX_OBJECT_BYTES_CEILING } from './kubernetes.ts';

describe('limitsFromEnv', () => {
  it('takes the defaults, and positive integers from the environment', () => {
    expect(limitsFromEnv({})).toEqual(DEFAULT_LIMITS);
    expect(
      limitsFromEnv({ MESON_STORE_SHARD_INSTANCES: '200', MESON_STORE_RUN_STATUS_FAILURES: '' }),
    ).toEqual({
      ...DEFAULT_LIMITS,
      shardInstances: 200,
    });
  });

  it.each([
    ['MESON_STORE_SHARD_INSTANCES', '-1', 'expected a positive integer, got "-1"'],
    ['MESON_STORE_SHARD_INSTANCES', '0', 'expected a positive integer'],
    ['MESON_STORE_SHARD_BYTES', '1e6', 'expected a positive integer'],
    ['MESON_STORE_SHARD_BYTES', '0x100', 'expected a positive integer'],
    ['MESON_STORE_STATE_VALUE_BYTES', '99999999999999999999', 'expected a positive integer'],
    ['MESON_STORE_MAX_OBJECT_BYTES', String(2 * 1024 * 1024), `at most ${MAX_OBJECT_BYTES_CEILING}`],
    ['MESON_STORE_SHARD_BYTES', String(900 * 1024), 'at most maxObjectBytes'],
  ])('refuses %s=%s, naming the variable', (name, value, message) => {
    expect(() => limitsFromEnv({ [name]: value })).toThrow(
      expect.objectContaining({ code: 'STORE_INVALID' }),
    );
    expect(() => limitsFromEnv({ [name]: value })).toThrow(name);
    expect(() => limitsFromEnv({ [name]: value })).toThrow(message);
  });
});
