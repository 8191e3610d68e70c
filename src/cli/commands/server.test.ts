import { describe, expect, it } from 'vitest';
import { retentionOptions } from './server.ts';

describe('mesonctl server retention options', () => {
  it('defaults to keeping the last 1000 finished runs per workflow, sweeping every minute', () => {
    expect(retentionOptions({}, {})).toEqual({ defaults: { keepLast: 1000 }, intervalMs: 60_000 });
  });

  it('reads flags before environment variables', () => {
    const env = {
      MESON_RETENTION_KEEP_LAST: '5',
      MESON_RETENTION_TTL_SECONDS: '60',
      MESON_RETENTION_INTERVAL_SECONDS: '0',
    };
    expect(retentionOptions({}, env)).toEqual({
      defaults: { keepLast: 5, ttlSecondsAfterFinished: { succeeded: 60, failed: 60, stopped: 60 } },
      intervalMs: 0,
    });
    expect(retentionOptions({ 'retention-keep-last': 'off', 'retention-interval': '30' }, env)).toEqual({
      defaults: { ttlSecondsAfterFinished: { succeeded: 60, failed: 60, stopped: 60 } },
      intervalMs: 30_000,
    });
  });

  it.each([
    ['retention-keep-last', '-1'],
    ['retention-keep-last', '1.5'],
    ['retention-keep-last', ''],
    ['retention-ttl', 'day'],
    ['retention-interval', '1e400'],
  ])('refuses --%s %j with a message naming the flag', (flag, value) => {
    expect(() => retentionOptions({ [flag]: value }, {})).toThrow(`--${flag}`);
  });
});
