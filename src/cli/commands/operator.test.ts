import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { webhookConfiguration, webhookManifest } from '../../operator/webhook-config.ts';
import { operatorCommand, parseListen, parseOperatorArgs, USAGE } from './operator.ts';

const ROOT = join(import.meta.dirname, '..', '..', '..');

async function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const code = await operatorCommand(args, {
    stdout: (s) => {
      out += s;
    },
    stderr: (s) => {
      err += s;
    },
    stdin: Readable.from([]),
    cwd: ROOT,
    env,
  });
  return { code, out, err };
}

const CA = `-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUX8Q0
-----END CERTIFICATE-----
`;

describe('mesonctl operator flags', () => {
  it('has the documented defaults', () => {
    const f = parseOperatorArgs([], {}, '/here');
    expect(f).toEqual({
      namespaces: [],
      api: { host: '0.0.0.0', port: 8080 },
      clientLimits: { qps: 1000, burst: 2000 },
      podGc: 'Never',
      podGcDelaySeconds: 0,
      statusIntervalSeconds: 1,
      leaderElection: {
        namespace: 'meson-system',
        name: 'meson-operator',
        leaseDurationMs: 15_000,
        renewDeadlineMs: 10_000,
        retryPeriodMs: 1_000,
      },
      stateNamespace: 'meson-system',
      podAnnotations: {},
      notify: { allow: { cidrs: [], hosts: new Set() }, maxPending: 1000 },
      metrics: {},
      copy: { roots: [], limits: {} },
    });
  });

  it('takes object store roots, the copy Secret and limits for copy step Pods; no local roots', () => {
    const f = parseOperatorArgs(
      ['--copy-root', 's3://flag-bucket/in', '--copy-s3-secret', 'meson-s3', '--copy-max-bytes', '4096'],
      { MESON_COPY_ROOTS: 's3://env-bucket/', MESON_COPY_MAX_OBJECTS: '9' },
      '/here',
    );
    expect(f !== 'help' && f.copy).toEqual({
      roots: ['s3://env-bucket/', 's3://flag-bucket/in/'],
      secretName: 'meson-s3',
      limits: { maxBytes: 4096, maxObjects: 9 },
    });
    expect(parseOperatorArgs([], { MESON_COPY_S3_SECRET: 'from-env' }, '/')).toMatchObject({
      copy: { secretName: 'from-env' },
    });
    for (const [args, msg] of [
      [['--copy-root', '/data'], /--copy-root \/data: expected s3:\/\/bucket\/prefix\//],
      [['--copy-root', 's3://a@bucket/x/'], /--copy-root .*userinfo/],
      [['--copy-root', 's3://bucket/%2e%2e/'], /--copy-root .*percent-encoded/],
      [['--copy-s3-secret', 'Not_A_Name'], /--copy-s3-secret: expected a Secret name/],
      [['--copy-max-objects', '0'], /--copy-max-objects: expected a positive integer/],
    ] as [string[], RegExp][])
      expect(() => parseOperatorArgs(args, {}, '/'), args.join(' ')).toThrow(msg);
  });

  it('reads every flag, and the environment where documented', () => {
    const f = parseOperatorArgs(
      [
        '--kubeconfig=kc.yaml',
        '--namespace',
        'team-a',
        '--namespace=team-b',
        '--namespace=team-a',
        '--api-listen=127.0.0.1:18080',
        '--webhook-listen=[::1]:19443',
        '--webhook-cert=tls.crt',
        '--webhook-key=/abs/tls.key',
        '--webhook-body-limit=65536',
        '--webhook-timeout=2.5',
        '--lease-name=meson-2',
        '--lease-namespace=ops',
        '--lease-duration=4',
        '--renew-deadline=3',
        '--retry-period=0.5',
        '--identity=me',
        '--state-namespace=meson-state',
        '--executor-image=registry.example/exec:1',
        '--pod-annotation=example.com/team=ml',
        '--pod-annotation=note=a=b',
        '--notify-allow=10.0.0.0/8,hooks.internal',
        '--rest-listen=127.0.0.1:18081',
        '--allowed-host=meson.example',
        '--status-interval=0.25',
      ],
      {},
      '/here',
    );
    expect(f).toEqual({
      kubeconfig: '/here/kc.yaml',
      namespaces: ['team-a', 'team-b'],
      api: { host: '127.0.0.1', port: 18080 },
      clientLimits: { qps: 1000, burst: 2000 },
      podGc: 'Never',
      podGcDelaySeconds: 0,
      statusIntervalSeconds: 0.25,
      webhook: {
        host: '::1',
        port: 19443,
        certFile: '/here/tls.crt',
        keyFile: '/abs/tls.key',
        bodyLimit: 65536,
        requestTimeoutMs: 2500,
      },
      leaderElection: {
        namespace: 'ops',
        name: 'meson-2',
        leaseDurationMs: 4000,
        renewDeadlineMs: 3000,
        retryPeriodMs: 500,
        identity: 'me',
      },
      stateNamespace: 'meson-state',
      executorImage: 'registry.example/exec:1',
      podAnnotations: { 'example.com/team': 'ml', note: 'a=b' },
      notify: { allow: expect.objectContaining({ hosts: new Set(['hooks.internal']) }), maxPending: 1000 },
      rest: { host: '127.0.0.1', port: 18081, allowedHosts: ['meson.example'] },
      metrics: {},
      copy: { roots: [], limits: {} },
    });
    expect(f !== 'help' && f.notify.allow.cidrs).toHaveLength(1);
    // /metrics: its token and label bound from the environment
    expect(
      parseOperatorArgs([], { MESON_METRICS_TOKEN: 'm', MESON_METRICS_MAX_WORKFLOWS: '50' }, '/here'),
    ).toMatchObject({ metrics: { token: 'm', maxWorkflows: 50 } });
    for (const bad of ['0', '-1', '1.5', 'x'])
      expect(() => parseOperatorArgs([], { MESON_METRICS_MAX_WORKFLOWS: bad }, '/here')).toThrow(
        /MESON_METRICS_MAX_WORKFLOWS: expected a positive integer/,
      );
    // beyond loopback the REST API needs a token, or an explicit --insecure-no-auth
    expect(() => parseOperatorArgs(['--rest-listen=0.0.0.0:8081'], {}, '/here')).toThrow(
      /refusing to serve the REST API beyond loopback without MESON_API_TOKEN/,
    );
    expect(parseOperatorArgs(['--rest-listen=:8081'], { MESON_API_TOKEN: 't' }, '/here')).toMatchObject({
      rest: { host: '0.0.0.0', port: 8081, token: 't', allowedHosts: 'any' },
    });
    expect(() => parseOperatorArgs(['--notify-allow=999.1.1.1/99'], {}, '/here')).toThrow(/--notify-allow/);
    expect(parseOperatorArgs(['--pod-concurrency=64'], {}, '/here')).toMatchObject({ podConcurrency: 64 });
    for (const bad of ['0', '-1', '1.5', 'x', '5000'])
      expect(() => parseOperatorArgs([`--pod-concurrency=${bad}`], {}, '/here')).toThrow(/--pod-concurrency/);
    // the API client's rate limits: defaults, flags, environment, 0 QPS for none
    expect(parseOperatorArgs([], {}, '/here')).toMatchObject({ clientLimits: { qps: 1000, burst: 2000 } });
    expect(parseOperatorArgs(['--kube-qps=50', '--kube-burst=100'], {}, '/here')).toMatchObject({
      clientLimits: { qps: 50, burst: 100 },
    });
    expect(parseOperatorArgs([], { MESON_KUBE_QPS: '0', MESON_KUBE_BURST: '1' }, '/here')).toMatchObject({
      clientLimits: { qps: 0, burst: 1 },
    });
    expect(parseOperatorArgs(['--kube-qps=12.5'], {}, '/here')).toMatchObject({
      clientLimits: { qps: 12.5 },
    });
    for (const bad of ['-1', 'x', '1e3', '', 'Infinity', '200000'])
      expect(() => parseOperatorArgs([`--kube-qps=${bad}`], {}, '/here')).toThrow(
        /--kube-qps: expected a number/,
      );
    for (const bad of ['0', '1.5', 'NaN'])
      expect(() => parseOperatorArgs([`--kube-burst=${bad}`], {}, '/here')).toThrow(/--kube-burst/);
    expect(parseOperatorArgs(['--pod-gc=OnRunSuccess'], {}, '/here')).toMatchObject({
      podGc: 'OnRunSuccess',
    });
    expect(parseOperatorArgs([], { MESON_POD_GC: 'OnRunCompletion' }, '/here')).toMatchObject({
      podGc: 'OnRunCompletion',
    });
    for (const bad of ['never', 'Always', '', 'onPodSuccess', 'OnWorkflowSuccess'])
      expect(() => parseOperatorArgs([`--pod-gc=${bad}`], {}, '/here')).toThrow(
        /--pod-gc: expected one of Never/,
      );
    expect(parseOperatorArgs(['--pod-gc=OnPodCompletion', '--pod-gc-delay=30'], {}, '/here')).toMatchObject({
      podGc: 'OnPodCompletion',
      podGcDelaySeconds: 30,
    });
    expect(
      parseOperatorArgs([], { MESON_POD_GC: 'OnPodSuccess', MESON_POD_GC_DELAY: '2.5' }, '/here'),
    ).toMatchObject({ podGc: 'OnPodSuccess', podGcDelaySeconds: 2.5 });
    expect(parseOperatorArgs([], {}, '/here')).toMatchObject({ podGcDelaySeconds: 0 });
    for (const bad of ['-1', 'x', '86401', '1e3', ''])
      expect(() => parseOperatorArgs([`--pod-gc-delay=${bad}`], {}, '/here')).toThrow(
        /--pod-gc-delay: expected a number from 0 to 86400/,
      );
    // how often a running run's progress is written: 0 (every pass) to 60 s
    expect(parseOperatorArgs([], { MESON_STATUS_INTERVAL: '0' }, '/here')).toMatchObject({
      statusIntervalSeconds: 0,
    });
    for (const bad of ['-1', 'x', '61', '1e3', ''])
      expect(() => parseOperatorArgs([`--status-interval=${bad}`], {}, '/here')).toThrow(
        /--status-interval: expected a number from 0 to 60/,
      );
    // preemption settings: the flag or MESON_PREEMPTION, checked at start with the field named
    const preempt = '{"namespaces":{"prod":{"preempt":true,"tier":0},"batch":{"tier":5}}}';
    expect(parseOperatorArgs([`--preemption=${preempt}`], {}, '/here')).toMatchObject({
      preemption: { namespaces: { prod: { preempt: true, tier: 0 }, batch: { tier: 5 } } },
    });
    expect(parseOperatorArgs([], { MESON_PREEMPTION: preempt }, '/here')).toHaveProperty('preemption');
    expect(parseOperatorArgs([], {}, '/here')).not.toHaveProperty('preemption');
    expect(() =>
      parseOperatorArgs(['--preemption={"namespaces":{"prod":{"tier":-1}}}'], {}, '/here'),
    ).toThrow(/--preemption\.namespaces\.prod\.tier/);
    expect(() => parseOperatorArgs(['--preemption=nope.yaml'], {}, '/here')).toThrow(
      /--preemption: cannot read/,
    );
    const env = parseOperatorArgs(
      [],
      {
        MESON_API_LISTEN: ':9000',
        MESON_WEBHOOK_CERT: 'c',
        MESON_WEBHOOK_KEY: 'k',
        MESON_WEBHOOK_LISTEN: '127.0.0.1:9444',
        MESON_WEBHOOK_BODY_LIMIT: '2048',
        POD_NAMESPACE: 'meson',
        MESON_EXECUTOR_IMAGE: 'exec:2',
      },
      '/w',
    );
    expect(env).toMatchObject({
      stateNamespace: 'meson',
      executorImage: 'exec:2',
      api: { host: '0.0.0.0', port: 9000 },
      webhook: { host: '127.0.0.1', port: 9444, certFile: '/w/c', keyFile: '/w/k', bodyLimit: 2048 },
      leaderElection: { namespace: 'meson' },
    });
  });

  it('turns leader election off with --leader-elect=false or --no-leader-elect', () => {
    for (const flag of ['--leader-elect=false', '--no-leader-elect'])
      expect(parseOperatorArgs([flag], {}, '/')).not.toHaveProperty('leaderElection');
    expect(parseOperatorArgs(['--leader-elect'], {}, '/')).toHaveProperty('leaderElection');
    expect(parseOperatorArgs(['--leader-elect=true'], {}, '/')).toHaveProperty('leaderElection');
  });

  it('refuses bad values naming the flag', () => {
    const bad: [string[], RegExp][] = [
      [['--leader-elect=maybe'], /--leader-elect: expected true or false/],
      [['--namespace=Team_A'], /--namespace: expected a namespace name/],
      [['--api-listen=8080'], /--api-listen: expected HOST:PORT/],
      [['--api-listen=:99999'], /--api-listen/],
      [['--webhook-cert=a'], /--webhook-cert and --webhook-key go together/],
      [['--webhook-cert=a', '--webhook-key=b', '--webhook-body-limit=1e12'], /--webhook-body-limit/],
      [['--lease-duration=0'], /--lease-duration: expected seconds/],
      [['--retry-period=soon'], /--retry-period/],
      [['--lease-name=../x'], /--lease-name/],
      [['--frobnicate'], /Unknown option '--frobnicate'/],
      [['positional'], /positional/],
    ];
    for (const [args, message] of bad)
      expect(() => parseOperatorArgs(args, {}, '/'), args.join(' ')).toThrow(message);
  });

  it('parses listen addresses', () => {
    expect(parseListen(':1', 'x')).toEqual({ host: '0.0.0.0', port: 1 });
    expect(parseListen('localhost:2', 'x')).toEqual({ host: 'localhost', port: 2 });
    expect(parseListen('[::]:3', 'x')).toEqual({ host: '::', port: 3 });
    expect(() => parseListen('::1:3', 'x')).toThrow(/expected/);
  });
});

describe('mesonctl operator reconciler flags', () => {
  it('refuses a bad state namespace, executor image or pod annotation, naming the flag', () => {
    for (const [args, msg] of [
      [['--state-namespace=Not_A_Namespace'], /--state-namespace: expected a namespace name/],
      [['--executor-image=has space'], /--executor-image: expected an image reference/],
      [['--pod-annotation=novalue'], /--pod-annotation: expected KEY=VALUE/],
      [['--pod-annotation==v'], /--pod-annotation: expected KEY=VALUE/],
      [['--pod-annotation=bad key=v'], /--pod-annotation: expected KEY=VALUE/],
      [['--pod-annotation=-lead=v'], /--pod-annotation: expected KEY=VALUE/],
    ] as const)
      expect(() => parseOperatorArgs([...args], {}, '/'), args.join(' ')).toThrow(msg);
  });
});

describe('mesonctl operator --spark-*', () => {
  it('takes the Spark settings from flags or the environment, checked', () => {
    expect(parseOperatorArgs([], {}, '/')).not.toHaveProperty('spark');
    expect(
      parseOperatorArgs(
        [
          '--spark-image=reg.example/spark:3.5.3',
          '--spark-executor-image=reg.example/exec:1@sha256:' + 'a'.repeat(64),
          '--spark-service-account=spark-driver',
          '--spark-ui-url=https://k8s.example/ui/{namespace}/{pod}/',
        ],
        {},
        '/',
      ),
    ).toMatchObject({
      spark: {
        image: 'reg.example/spark:3.5.3',
        executorImage: `reg.example/exec:1@sha256:${'a'.repeat(64)}`,
        serviceAccountName: 'spark-driver',
        uiUrl: 'https://k8s.example/ui/{namespace}/{pod}/',
      },
    });
    expect(
      parseOperatorArgs([], { MESON_SPARK_IMAGE: 'spark:1', MESON_SPARK_UI_URL: '' }, '/'),
    ).toMatchObject({ spark: { image: 'spark:1', uiUrl: '' } });
    for (const [args, msg] of [
      [['--spark-image=--privileged'], /--spark-image: expected an image reference/],
      [['--spark-executor-image=a b'], /--spark-executor-image: expected an image reference/],
      [['--spark-service-account=Not_SA'], /--spark-service-account: expected a service account name/],
      [['--spark-ui-url=javascript:alert(1)//{pod}'], /--spark-ui-url: expected an http\(s\) URL template/],
      [['--spark-ui-url=https://x/{token}'], /--spark-ui-url: unknown placeholder \{token\}/],
      [['--spark-ui-url=not a url'], /--spark-ui-url: expected an http\(s\) URL template/],
    ] as const)
      expect(() => parseOperatorArgs([...args], {}, '/'), args.join(' ')).toThrow(msg);
  });
});

describe('mesonctl operator --mesos-master', () => {
  it('takes the server’s Mesos flags and environment, and nothing Mesos without --mesos-master', () => {
    expect(parseOperatorArgs([], {}, '/')).not.toHaveProperty('mesos');
    const f = parseOperatorArgs(
      [
        '--mesos-master=http://mesos-master:5050/',
        '--mesos-role=batch',
        '--mesos-framework-name=meson-prod',
        '--mesos-failover-timeout=3600',
        '--mesos-executor=["/usr/bin/node","/opt/meson/executors/pod.ts"]',
        '--mesos-option=declineAfterMs=200',
      ],
      { MESON_MESOS_USER: 'meson', MESON_MESOS_OPTIONS: 'refuseSeconds=9' },
      '/',
    );
    expect(f !== 'help' && f.mesos).toEqual({
      master: 'http://mesos-master:5050',
      framework: { role: 'batch', name: 'meson-prod', user: 'meson', failoverTimeoutSeconds: 3600 },
      pool: { declineAfterMs: 200, refuseSeconds: 9 },
      launcher: { executorCommand: ['/usr/bin/node', '/opt/meson/executors/pod.ts'] },
    });
    const env = parseOperatorArgs([], { MESON_MESOS_MASTER: 'https://m.example:5050' }, '/');
    expect(env !== 'help' && env.mesos?.master).toBe('https://m.example:5050');
  });

  it('refuses bad Mesos flags naming the flag, and the server-only --local-capacity', () => {
    for (const [args, msg] of [
      [['--mesos-role=batch'], /--mesos-role: needs --mesos-master/],
      [['--mesos-master=zk://zk:2181/mesos'], /--mesos-master: expected http/],
      [['--mesos-master=http://user:pw@m:5050'], /--mesos-master: expected http/],
      [['--mesos-master=javascript:alert(1)'], /--mesos-master: expected http/],
      [['--mesos-master=http://m:5050', '--mesos-option=__proto__=1'], /unknown option "__proto__"/],
      [['--mesos-master=http://m:5050', '--mesos-failover-timeout=-1'], /--mesos-failover-timeout/],
      [['--mesos-master=http://m:5050', '--mesos-user=two words'], /--mesos-user/],
      [['--mesos-master=http://m:5050', '--local-capacity=off'], /Unknown option '--local-capacity'/],
    ] as const)
      expect(() => parseOperatorArgs([...args], {}, '/'), args.join(' ')).toThrow(msg);
  });
});

describe('mesonctl operator command', () => {
  it('prints help that says what it does, with every flag', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(USAGE);
    expect(r.out).toMatch(/While\s+it holds the Lease it reconciles Workflows/);
    for (const flag of [
      '--kubeconfig',
      '--namespace',
      '--api-listen',
      '--webhook-listen',
      '--webhook-cert',
      '--webhook-key',
      '--webhook-body-limit',
      '--leader-elect',
      '--lease-name',
      '--lease-namespace',
      '--state-namespace',
      '--executor-image',
      '--pod-annotation',
      '--mesos-master',
      '--mesos-role',
      '--mesos-framework-name',
      '--mesos-user',
      '--mesos-failover-timeout',
      '--mesos-executor',
      '--mesos-option',
      '--copy-root',
      '--copy-s3-secret',
      '--copy-max-bytes',
      '--copy-max-objects',
    ])
      expect(r.out).toContain(flag);
    expect(r.out).not.toContain('--local-capacity');
  });

  it('exits 2 on bad usage and 1 when there is no cluster to talk to', async () => {
    const usage = await run(['--api-listen=nope']);
    expect(usage.code).toBe(2);
    expect(usage.err).toMatch(/--api-listen: expected/);
    const none = await run([]);
    expect(none.code).toBe(1);
    expect(none.err).toMatch(/no --kubeconfig, no KUBECONFIG, and not running in a cluster/);
    const missing = await run(['--kubeconfig=/nonexistent/kubeconfig']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/cannot load the Kubernetes configuration from \/nonexistent\/kubeconfig/);
  });

  it('webhook-config prints the configuration for a CA bundle, a URL or a service, and namespaces', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'meson-ca-'));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, CA);
    try {
      const r = await run([
        'webhook-config',
        `--ca-bundle=${ca}`,
        '--url=https://127.0.0.1:9443',
        '--namespace=a',
      ]);
      expect(r.code, r.err).toBe(0);
      const doc = parse(r.out);
      expect(doc).toEqual(
        webhookConfiguration({ caBundle: CA, url: 'https://127.0.0.1:9443', namespaces: ['a'] }),
      );
      expect(doc.webhooks[0].clientConfig).toEqual({
        url: 'https://127.0.0.1:9443/validate',
        caBundle: Buffer.from(CA).toString('base64'),
      });
      const svc = parse((await run(['webhook-config', `--ca-bundle=${ca}`, '--service=ops/hook:8443'])).out);
      expect(svc.webhooks[1].clientConfig.service).toEqual({
        namespace: 'ops',
        name: 'hook',
        path: '/validate',
        port: 8443,
      });
      expect(svc.metadata.annotations).toBeUndefined();
      const bad: [string[], RegExp][] = [
        [[], /--ca-bundle FILE is required/],
        [[`--ca-bundle=${ca}`, '--url=http://x'], /--url: expected an https:\/\/ URL/],
        [[`--ca-bundle=${ca}`, '--service=x'], /--service: expected NAMESPACE\/NAME/],
        [[`--ca-bundle=${ca}`, '--url=https://x', '--service=a/b'], /not both/],
        [['--ca-bundle=/nonexistent'], /cannot read/],
        [[`--ca-bundle=${join(ROOT, 'package.json')}`], /expected a PEM certificate/],
      ];
      for (const [args, message] of bad) {
        const res = await run(['webhook-config', ...args]);
        expect(res.code, args.join(' ')).toBe(2);
        expect(res.err).toMatch(message);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps deploy/webhook in step with webhookConfiguration()', () => {
    const file = readFileSync(
      join(ROOT, 'deploy', 'webhook', 'validating-webhook-configuration.yaml'),
      'utf8',
    );
    expect(file).toBe(webhookManifest());
    const doc = parse(file);
    expect(
      doc.webhooks.map((w: { name: string; failurePolicy: string }) => [w.name, w.failurePolicy]),
    ).toEqual([
      ['workflows.meson.dev', 'Fail'],
      ['workflowruns.meson.dev', 'Fail'],
      ['dataartifacts.meson.dev', 'Ignore'],
    ]);
    for (const w of doc.webhooks) {
      expect(w.rules[0].operations).toEqual(['CREATE', 'UPDATE']);
      expect(w.rules[0].resources.join()).not.toMatch(/status/);
    }
  });
});
