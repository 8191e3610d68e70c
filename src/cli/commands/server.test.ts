import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isLoopbackHost, listenUrl, retentionOptions, serverCommand } from './server.ts';

const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'meson-server-test-'));
  cleanups.push(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function server(args: string[], env: Record<string, string> = {}) {
  const cwd = tempDir();
  let out = '';
  let err = '';
  const code = await serverCommand([...args, '--no-examples', '--data-dir', join(cwd, 'data')], {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    stdin: Readable.from([]),
    cwd,
    env,
  });
  return { code, out, err, cwd };
}

describe('mesonctl server', () => {
  it('tells loopback binds from the others', () => {
    for (const h of [
      '127.0.0.1',
      '127.1.2.3',
      'localhost',
      'LOCALHOST',
      '::1',
      '[::1]',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
    ])
      expect(isLoopbackHost(h), h).toBe(true);
    for (const h of [
      '0.0.0.0',
      '::',
      '[::]',
      '192.168.1.2',
      'example.com',
      'localhost.example.com',
      '128.0.0.1',
      '::2',
    ])
      expect(isLoopbackHost(h), h).toBe(false);
  });

  it('prints the address it is bound to', () => {
    expect(listenUrl({ address: '0.0.0.0', port: 8080, family: 'IPv4' })).toBe('http://0.0.0.0:8080');
    expect(listenUrl({ address: '::', port: 1, family: 'IPv6' })).toBe('http://[::]:1');
    expect(listenUrl({ address: '127.0.0.1', port: 9, family: 'IPv4' })).toBe('http://127.0.0.1:9');
  });

  it('refuses to listen beyond loopback without a token, in every spelling, before touching the data dir', async () => {
    for (const args of [
      ['--host', '0.0.0.0'],
      ['--host', '::'],
      ['--host', '192.168.1.2'],
    ]) {
      const res = await server(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.err).toMatch(/refusing to listen on .* without MESON_API_TOKEN.*--insecure-no-auth/s);
      expect(readdirSync(res.cwd)).toEqual([]);
    }
    const env = await server([], { MESON_HOST: '0.0.0.0' });
    expect(env.code).toBe(2);
    // a bad limit is a usage error too
    expect((await server(['--body-limit', 'lots'])).code).toBe(2);
    expect((await server(['--max-body-depth', '0'])).code).toBe(2);
  });

  it('refuses bad Mesos and local capacity flags before touching the data dir, and lists them in --help', async () => {
    for (const [args, env, why] of [
      [['--mesos-master', 'zk://zk:2181/mesos'], {}, /--mesos-master: expected http/],
      [[], { MESON_MESOS_MASTER: 'm1:5050' }, /--mesos-master: expected http/],
      [['--mesos-role', 'batch'], {}, /--mesos-role: needs --mesos-master/],
      [['--mesos-master', 'http://m:5050', '--mesos-option', 'refuseSeconds=-1'], {}, /refuseSeconds/],
      [['--local-capacity', 'cpus=-2'], {}, /--local-capacity/],
      [
        ['--preemption', '{"namespaces":{"prod":{"preempt":1}}}'],
        {},
        /--preemption\.namespaces\.prod\.preempt/,
      ],
      [[], { MESON_PREEMPTION: '{"defaultTier":-3}' }, /--preemption\.defaultTier/],
    ] as const) {
      const res = await server([...args], { ...env });
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.err).toMatch(why);
      expect(readdirSync(res.cwd)).toEqual([]);
    }
    const help = await server(['--help']);
    expect(help.out).toMatch(/--mesos-master URL/);
    expect(help.out).toMatch(/--local-capacity SPEC/);
    expect(help.out).toMatch(/refuseSeconds +refuse_seconds of those declines \(default 5, 0\.\.31536000\)/);
  });

  it('listens on 0.0.0.0 with a token and says so, serving any Host with the token', async () => {
    const dir = tempDir();
    const child: ChildProcess = spawn(
      process.execPath,
      [MAIN, 'server', '--host', '0.0.0.0', '--port', '0', '--no-examples', '--data-dir', join(dir, 'data')],
      { cwd: dir, env: { ...process.env, MESON_API_TOKEN: 'tok', MESON_LOG_LEVEL: 'warn' }, stdio: 'pipe' },
    );
    cleanups.push(() => child.kill('SIGKILL'));
    let out = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no start: ${out}`)), 20_000);
      const onData = (d: Buffer) => {
        out += d;
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
    });
    expect(url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    const port = new URL(url).port;
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/namespaces/default/workflows`, {
      headers: { authorization: 'Bearer tok', host: 'meson.example:1234' },
    });
    expect(res.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/api/v1/namespaces/default/workflows`)).status).toBe(401);
  });
});

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
