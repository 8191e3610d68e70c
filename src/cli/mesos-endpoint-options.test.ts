import { describe, expect, it } from 'vitest';
import { parseOperatorArgs, UsageError } from './commands/operator.ts';
import { parsePortRanges } from './mesos-endpoint-options.ts';

const parse = (args: string[], env: NodeJS.ProcessEnv = {}) => {
  const f = parseOperatorArgs(args, env, '/here');
  if (f === 'help') throw new Error('help');
  return f.mesosEndpoint;
};

function refused(args: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    parseOperatorArgs(args, env, '/here');
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${args.join(' ')}`);
}

describe('mesonctl operator --mesos-endpoint flags', () => {
  it('is off by default, and its other flags need it', () => {
    expect(parse([])).toBeUndefined();
    expect(refused(['--mesos-task-image=x'])).toBe('--mesos-task-image needs --mesos-endpoint');
    expect(refused(['--mesos-endpoint-option=maxFrameworks=2'])).toContain('needs --mesos-endpoint');
  });

  it('has documented defaults: tasks in the state namespace, no limits changed', () => {
    expect(parse(['--mesos-endpoint=127.0.0.1:5050', '--state-namespace=meson-x'])).toEqual({
      host: '127.0.0.1',
      port: 5050,
      namespace: 'meson-x',
    });
  });

  it('reads every setting from flags or the environment, flags winning', () => {
    const env = {
      MESON_MESOS_ENDPOINT: '127.0.0.1:5051',
      MESON_MESOS_TASK_NAMESPACE: 'from-env',
      MESON_MESOS_TASK_IMAGE: 'alpine:3',
      MESON_MESOS_TASK_PORTS: '40000-40010',
      MESON_MESOS_ENDPOINT_OPTIONS: 'maxFrameworks=3, offerTimeoutMs=60000',
      MESON_MESOS_ENDPOINT_CREDENTIALS: 'fw:se:cret',
    };
    expect(parse([], env)).toEqual({
      host: '127.0.0.1',
      port: 5051,
      namespace: 'from-env',
      image: 'alpine:3',
      ports: [{ begin: 40000, end: 40010 }],
      limits: { maxFrameworks: 3, offerTimeoutMs: 60000 },
      credentials: { principal: 'fw', secret: 'se:cret' },
    });
    expect(
      parse(
        [
          '--mesos-endpoint=:6000',
          '--mesos-task-namespace=flag-ns',
          '--mesos-endpoint-option=maxFrameworks=9',
        ],
        {
          ...env,
        },
      ),
    ).toMatchObject({ host: '0.0.0.0', port: 6000, namespace: 'flag-ns', limits: { maxFrameworks: 9 } });
  });

  it('refuses to serve beyond loopback without credentials (anyone reaching it could run Pods)', () => {
    for (const addr of ['0.0.0.0:5050', ':5050', '10.0.0.1:5050', '[::]:5050', 'example.com:5050']) {
      expect(refused([`--mesos-endpoint=${addr}`])).toContain('MESON_MESOS_ENDPOINT_CREDENTIALS');
    }
    expect(parse(['--mesos-endpoint=[::1]:5050'])?.credentials).toBeUndefined();
    expect(parse(['--mesos-endpoint=:5050', '--insecure-no-auth'])).toMatchObject({ port: 5050 });
    expect(parse(['--mesos-endpoint=:5050'], { MESON_ALLOW_NO_AUTH: '1' })).toMatchObject({ port: 5050 });
    expect(
      parse(['--mesos-endpoint=:5050'], { MESON_MESOS_ENDPOINT_CREDENTIALS: 'p:s' })?.credentials,
    ).toEqual({ principal: 'p', secret: 's' });
    for (const bad of ['nocolon', ':secret', 'principal:'])
      expect(refused(['--mesos-endpoint=:5050'], { MESON_MESOS_ENDPOINT_CREDENTIALS: bad })).toContain(
        'PRINCIPAL:SECRET',
      );
  });

  it('refuses bad values, naming the flag', () => {
    const e = '--mesos-endpoint=127.0.0.1:5050';
    expect(refused(['--mesos-endpoint=5050'])).toContain('--mesos-endpoint');
    expect(refused([e, '--mesos-task-namespace=Bad_NS'])).toContain('--mesos-task-namespace');
    expect(refused([e, '--mesos-task-namespace=../x'])).toContain('--mesos-task-namespace');
    expect(refused([e, '--mesos-task-image=a b'])).toContain('--mesos-task-image');
    for (const opt of [
      '__proto__=1',
      'constructor=1',
      'toString=1',
      'maxFrameworks',
      'maxFrameworks=',
      'maxFrameworks=0',
      'maxFrameworks=1.5',
      'maxFrameworks=-1',
      'maxFrameworks=0x10',
      'maxCallBytes=999999999999',
      'heartbeatIntervalSeconds=NaN',
    ])
      expect(refused([e, `--mesos-endpoint-option=${opt}`]), opt).toContain('--mesos-endpoint-option');
    expect(refused([e], { MESON_MESOS_ENDPOINT_OPTIONS: 'nope=1' })).toContain(
      'MESON_MESOS_ENDPOINT_OPTIONS',
    );
  });

  it('parses port ranges within 1..65535', () => {
    expect(parsePortRanges('31000-32000,40000', 'f')).toEqual([
      { begin: 31000, end: 32000 },
      { begin: 40000, end: 40000 },
    ]);
    for (const bad of ['', '0-10', '10-5', '1-65536', 'a-b', '31000-', '-5', '1,,2', '1-2-3', '１２'])
      expect(() => parsePortRanges(bad, '--mesos-task-ports'), bad).toThrow('--mesos-task-ports');
  });
});
