import { describe, expect, it } from 'vitest';
import { parseLocalCapacity, parseMesosOptions } from './mesos-options.ts';

describe('mesonctl server Mesos flags', () => {
  it('is off without --mesos-master, and refuses a Mesos flag without it', () => {
    expect(parseMesosOptions({}, {})).toBeUndefined();
    expect(parseMesosOptions({}, { MESON_MESOS_MASTER: '  ' })).toBeUndefined();
    expect(() => parseMesosOptions({ 'mesos-role': 'r' }, {})).toThrow('--mesos-role: needs --mesos-master');
  });

  it('reads every option, flags before environment variables', () => {
    expect(
      parseMesosOptions(
        {
          'mesos-master': 'http://m1:5050/',
          'mesos-role': 'batch',
          'mesos-failover-timeout': '60',
          'mesos-executor': '["/usr/bin/node","/opt/pod.ts"]',
          'mesos-option': ['refuseSeconds=9', 'maxResultBytes=1024'],
        },
        {
          MESON_MESOS_MASTER: 'http://ignored:1',
          MESON_MESOS_FRAMEWORK_NAME: 'meson-prod',
          MESON_MESOS_USER: 'meson',
          MESON_MESOS_OPTIONS: 'declineAfterMs=300, refuseSeconds=2',
        },
      ),
    ).toEqual({
      master: 'http://m1:5050',
      framework: { role: 'batch', name: 'meson-prod', user: 'meson', failoverTimeoutSeconds: 60 },
      pool: { declineAfterMs: 300, refuseSeconds: 9 },
      launcher: { maxResultBytes: 1024, executorCommand: ['/usr/bin/node', '/opt/pod.ts'] },
    });
    expect(
      parseMesosOptions({ 'mesos-executor': '/opt/meson executor' }, { MESON_MESOS_MASTER: 'https://m:1' }),
    ).toEqual({
      master: 'https://m:1',
      framework: {},
      launcher: { executorCommand: ['/opt/meson executor'] },
    });
  });

  it('refuses a master that is not an http(s) HOST:PORT, in its several forms', () => {
    for (const bad of [
      'zk://zk1:2181/mesos',
      'm1:5050',
      'file:///etc/passwd',
      'http://user:secret@m1:5050',
      'http://m1:5050/?x=1',
      'javascript:alert(1)',
      'http://',
    ]) {
      expect(() => parseMesosOptions({ 'mesos-master': bad }, {}), bad).toThrow(/--mesos-master: expected/);
    }
  });

  it('refuses unknown options and values out of bounds, naming the option and the bounds', () => {
    const m = { 'mesos-master': 'http://m:5050' };
    expect(() => parseMesosOptions({ ...m, 'mesos-option': ['__proto__=1'] }, {})).toThrow(
      /unknown option "__proto__"/,
    );
    expect(() => parseMesosOptions({ ...m, 'mesos-option': ['constructor=1'] }, {})).toThrow(
      /unknown option/,
    );
    expect(() => parseMesosOptions({ ...m, 'mesos-option': ['maxTaskBytes=70000'] }, {})).toThrow(
      '--mesos-option maxTaskBytes: expected a whole number from 1 to 65536, got "70000"',
    );
    expect(() => parseMesosOptions({ ...m, 'mesos-option': ['maxResultBytes=2097152'] }, {})).toThrow(
      /1 to 1048576/,
    );
    for (const bad of [
      'refuseSeconds=-1',
      'refuseSeconds=1.5',
      'refuseSeconds=',
      'refuseSeconds',
      'refuseSeconds=1e3x',
    ]) {
      expect(() => parseMesosOptions({ ...m, 'mesos-option': [bad] }, {}), bad).toThrow(
        /--mesos-option refuseSeconds/,
      );
    }
    expect(() => parseMesosOptions(m, { MESON_MESOS_OPTIONS: 'offerHoldMs=9999999999' })).toThrow(
      /offerHoldMs/,
    );
    expect(() => parseMesosOptions({ ...m, 'mesos-failover-timeout': '-5' }, {})).toThrow(
      /--mesos-failover-timeout/,
    );
    expect(() => parseMesosOptions({ ...m, 'mesos-role': 'a b' }, {})).toThrow(/--mesos-role/);
    expect(() => parseMesosOptions({ ...m, 'mesos-framework-name': 'x'.repeat(300) }, {})).toThrow(
      /1 to 256/,
    );
    for (const bad of ['[', '[]', '[1]', '[""]', JSON.stringify(Array(65).fill('x'))]) {
      expect(() => parseMesosOptions({ ...m, 'mesos-executor': bad }, {}), bad).toThrow(/--mesos-executor/);
    }
  });
});

describe('--local-capacity', () => {
  it('is the machine by default, nothing with off, or the given quantities', () => {
    expect(parseLocalCapacity(undefined, {})).toBeUndefined();
    expect(parseLocalCapacity('off', {})).toEqual({ cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 });
    expect(parseLocalCapacity(undefined, { MESON_LOCAL_CAPACITY: 'cpus=2,memory=4Gi' })).toEqual({
      cpuMillis: 2000,
      memoryBytes: 4 * 1024 ** 3,
    });
    expect(parseLocalCapacity('cpus=500m, disk=1G', { MESON_LOCAL_CAPACITY: 'off' })).toEqual({
      cpuMillis: 500,
      diskBytes: 1e9,
    });
  });

  it('refuses what is not a capacity, naming the part', () => {
    for (const bad of ['cpus=-1', 'memory=-1Gi', 'cpus=abc', 'gpus=1', 'cpus', 'cpus=1e400', 'on']) {
      expect(() => parseLocalCapacity(bad, {}), bad).toThrow(/--local-capacity/);
    }
  });
});
