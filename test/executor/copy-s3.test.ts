// Copy steps with s3:// through the standalone server against an S3-compatible store (gofakes3):
// file → s3 → s3 → file, one object and a prefix, byte for byte, with an object of several MiB
// that only streams; and what a run's parameters cannot make a copy do: reach a key outside the
// admin's object store roots, in any encoding, in `from` or in `to`, move more than the limits,
// or land a hostile listed key outside the local roots. Steps never see the store's credentials.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { copyWithStore, s3ClientFor } from '../../executors/copy-s3.ts';
import { DEFAULT_COPY_LIMITS } from '../../executors/limits.ts';
import { applyManifests } from '../../src/controller/manifests.ts';
import { createStandalone, namespaceFiles, type StandaloneOptions } from '../../src/controller/standalone.ts';
import type { Workflow } from '../../src/crds/index.ts';
import { buildPod } from '../../src/launchers/kubernetes-pod.ts';
import { runToEnd } from '../standalone/runs.ts';
import { type S3Fake, startS3Fake } from './s3-fake.ts';

const BUCKET = 'meson-data';
const OTHER = 'other-team';
const ROOT_URI = `s3://${BUCKET}/team-a/`;

let fake: S3Fake;
const saved: Record<string, string | undefined> = {};
beforeAll(async () => {
  fake = await startS3Fake([BUCKET, OTHER]);
  // the admin's configuration, in the server's environment (executors are started from it)
  for (const [k, v] of Object.entries(fake.env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
}, 600_000);
afterAll(async () => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  await fake?.stop();
});

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

const wf = (name: string, definition: unknown, params: string[] = []): Workflow =>
  ({
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name, namespace: 'default' },
    spec: {
      parameters: params.map((p) => ({ name: p, type: 'string', value: 'x' })),
      definition,
    },
  }) as Workflow;

const copyStep = (name: string, from: string, to: string) => ({ step: { name, copy: { from, to } } });

function setup(opts: Partial<StandaloneOptions> = {}) {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'meson-s3-')));
  const dataDir = join(root, 'data');
  const s = createStandalone({ dataDir, pollMs: 50, copyRoots: [ROOT_URI], ...opts });
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => s.stop());
  const files = namespaceFiles(dataDir, 'default');
  mkdirSync(files, { recursive: true });
  applyManifests(
    s.store,
    {
      workflows: [
        wf('pipeline', {
          sequence: [
            copyStep('up', 'big.bin', `${ROOT_URI}in/big.bin`),
            copyStep('across', `${ROOT_URI}in/big.bin`, `${ROOT_URI}out/`),
            copyStep('down', `${ROOT_URI}out/big.bin`, 'back/'),
            copyStep('up-tree', 'tree', `${ROOT_URI}tree/`),
            copyStep('across-tree', `${ROOT_URI}tree/`, `${ROOT_URI}tree2/`),
            copyStep('down-tree', `${ROOT_URI}tree2/`, 'tree-back'),
          ],
        }),
        wf('copier', { step: { name: 'c', copy: { from: '${src}', to: '${dst}' } } }, ['src', 'dst']),
        wf('env', { step: { name: 'e', shell: { script: 'env' } } }),
      ],
      artifacts: [],
      runs: [],
      errors: [],
    },
    Date.now(),
  );
  s.start();
  const run = (workflow: string, params: Record<string, string> = {}) =>
    runToEnd(s, workflow, params, 90_000);
  return { s, root, files, run };
}

async function keys(bucket: string, prefix = ''): Promise<string[]> {
  const out = await fake.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (out.Contents ?? []).map((o) => o.Key as string).sort();
}

async function object(bucket: string, key: string): Promise<Buffer> {
  const res = await fake.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(
    await (res.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
  );
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('copy steps with s3:// in the standalone server', () => {
  it('copies file → s3 → s3 → file, one object and a tree, byte for byte', async () => {
    const { files, run } = setup();
    // 24 MiB: three parts of a multipart upload, streamed, never one buffer
    const big = randomBytes(24 * 1024 * 1024);
    writeFileSync(join(files, 'big.bin'), big);
    const tree: Record<string, Buffer> = {
      'a.txt': Buffer.from('alpha\n'),
      'sub/b.bin': randomBytes(70_000),
      'sub/deeper/c d.txt': Buffer.from('with a space'),
      'empty.txt': Buffer.alloc(0),
    };
    for (const [rel, data] of Object.entries(tree)) {
      mkdirSync(join(files, 'tree', rel, '..'), { recursive: true });
      writeFileSync(join(files, 'tree', rel), data);
    }
    const r = await run('pipeline');
    expect(r, r.message).toMatchObject({ phase: 'Succeeded' });
    expect(r.steps.map((x) => x.phase)).toEqual(Array(6).fill('Succeeded'));

    expect(sha(await object(BUCKET, 'team-a/in/big.bin'))).toBe(sha(big));
    expect(sha(await object(BUCKET, 'team-a/out/big.bin'))).toBe(sha(big));
    const back = readFileSync(join(files, 'back', 'big.bin'));
    expect(back.length).toBe(big.length);
    expect(back.equals(big)).toBe(true);

    const rels = Object.keys(tree).sort();
    expect(await keys(BUCKET, 'team-a/tree/')).toEqual(rels.map((k) => `team-a/tree/${k}`));
    expect(await keys(BUCKET, 'team-a/tree2/')).toEqual(rels.map((k) => `team-a/tree2/${k}`));
    for (const [rel, data] of Object.entries(tree))
      expect(readFileSync(join(files, 'tree-back', rel)).equals(data), rel).toBe(true);
    // no temporary file is left behind
    expect(readdirSync(join(files, 'back'))).toEqual(['big.bin']);
  });

  it('refuses every way out of the object store roots a run parameter tries, in from and in to', async () => {
    const { files, run } = setup();
    writeFileSync(join(files, 'in.txt'), 'payload');
    await fake.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'team-a/ok.txt', Body: 'ok' }));
    await fake.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'secret/keys.txt', Body: 'secret' }));
    // the legitimate use works
    expect(await run('copier', { src: 'in.txt', dst: `${ROOT_URI}got.txt` })).toMatchObject({
      phase: 'Succeeded',
    });
    expect(await keys(BUCKET)).toEqual(expect.arrayContaining(['secret/keys.txt', 'team-a/got.txt']));
    const before = await keys(BUCKET);
    const outside = [
      `s3://${BUCKET}/secret/keys.txt`,
      `s3://${BUCKET}/team-ab/x`,
      `S3://${BUCKET}/secret/keys.txt`,
      `s3://${OTHER}/team-a/x`,
      `s3://${BUCKET}/`,
      `s3://${BUCKET}`,
    ];
    const malformed = [
      `${ROOT_URI}../secret/keys.txt`,
      `${ROOT_URI}%2e%2e/secret/keys.txt`,
      `${ROOT_URI}%2E%2E%2Fsecret/keys.txt`,
      `${ROOT_URI}%252e%252e/secret/keys.txt`,
      `${ROOT_URI}.%2e/secret/keys.txt`,
      `${ROOT_URI}..\\secret\\keys.txt`,
      `${ROOT_URI}x//y`,
      `${ROOT_URI}./x`,
      `${ROOT_URI}x\ny`,
      `s3://evil@${BUCKET}/team-a/x`,
      `s3://${BUCKET}@evil.example/team-a/x`,
      `s3://${BUCKET}:9000/team-a/x`,
      `s3://${BUCKET.toUpperCase()}/team-a/x`,
      's3://127.0.0.1/team-a/x',
      `s3:${BUCKET}/team-a/x`,
    ];
    const cases: [Record<string, string>, string][] = [];
    for (const uri of outside) {
      cases.push([{ src: uri, dst: 'stolen.txt' }, 'EXECUTOR_COPY_OUTSIDE_ROOTS']);
      cases.push([{ src: 'in.txt', dst: uri }, 'EXECUTOR_COPY_OUTSIDE_ROOTS']);
    }
    for (const uri of malformed) {
      cases.push([{ src: uri, dst: 'stolen.txt' }, 'EXECUTOR_COPY_PATH']);
      cases.push([{ src: 'in.txt', dst: uri }, 'EXECUTOR_COPY_PATH']);
    }
    // a NUL never reaches the executor: the engine refuses it when it resolves the step
    cases.push([{ src: `${ROOT_URI}x\u0000y`, dst: 'stolen.txt' }, 'NUL character']);
    cases.push([{ src: 'in.txt', dst: `${ROOT_URI}x\u0000y` }, 'NUL character']);
    // other schemes stay refused
    cases.push([{ src: 'gs://bucket/x', dst: 'stolen.txt' }, 'EXECUTOR_COPY_SCHEME']);
    cases.push([{ src: 'in.txt', dst: 'https://evil.example/x' }, 'EXECUTOR_COPY_SCHEME']);
    for (const [params, code] of cases) {
      const r = await run('copier', params);
      expect(r, JSON.stringify(params)).toMatchObject({
        phase: 'Failed',
        message: expect.stringContaining(code),
      });
    }
    expect(() => readFileSync(join(files, 'stolen.txt'))).toThrow();
    // nothing was written to either bucket by the refused copies
    expect(await keys(BUCKET)).toEqual(before);
    expect(await keys(OTHER)).toEqual([]);
  }, 300_000);

  it('refuses objects a listing returns whose keys would leave the local roots, before writing any', async () => {
    const { root, files, run } = setup();
    for (const key of ['team-a/hostile/fine.txt', 'team-a/hostile/../../../../escaped.txt'])
      await fake.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'x' }));
    const r = await run('copier', { src: `${ROOT_URI}hostile/`, dst: 'landing' });
    expect(r).toMatchObject({ phase: 'Failed', message: expect.stringContaining('EXECUTOR_COPY_PATH') });
    expect(r.message).toContain('".." segment');
    expect(() => readdirSync(join(files, 'landing'))).toThrow();
    expect(() => readFileSync(join(root, 'escaped.txt'))).toThrow();
  });

  it('bounds what one copy moves: bytes and objects, checked before anything moves', async () => {
    const { files, run } = setup({ copyLimits: { maxBytes: 100_000, maxObjects: 3 } });
    writeFileSync(join(files, 'large.bin'), randomBytes(100_001));
    writeFileSync(join(files, 'fits.bin'), randomBytes(100_000));
    mkdirSync(join(files, 'many'));
    for (let i = 0; i < 4; i++) writeFileSync(join(files, 'many', `f${i}`), 'x');
    expect(await run('copier', { src: 'large.bin', dst: `${ROOT_URI}limits/large.bin` })).toMatchObject({
      phase: 'Failed',
      message: expect.stringContaining('EXECUTOR_COPY_TOO_LARGE'),
    });
    expect(await run('copier', { src: 'many', dst: `${ROOT_URI}limits/many/` })).toMatchObject({
      phase: 'Failed',
      message: expect.stringContaining('EXECUTOR_COPY_TOO_MANY_OBJECTS'),
    });
    expect(await keys(BUCKET, 'team-a/limits/')).toEqual([]);
    // at the limit it copies; a prefix over the object limit is refused on the store side too
    expect(await run('copier', { src: 'fits.bin', dst: `${ROOT_URI}limits/fits.bin` })).toMatchObject({
      phase: 'Succeeded',
    });
    for (let i = 0; i < 4; i++)
      await fake.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `team-a/four/${i}`, Body: 'x' }));
    expect(await run('copier', { src: `${ROOT_URI}four/`, dst: `${ROOT_URI}four-copy/` })).toMatchObject({
      phase: 'Failed',
      message: expect.stringContaining('EXECUTOR_COPY_TOO_MANY_OBJECTS'),
    });
    expect(await keys(BUCKET, 'team-a/four-copy/')).toEqual([]);
    // a missing object is a clear failure, not a crash
    expect(await run('copier', { src: `${ROOT_URI}no/such/key`, dst: 'x' })).toMatchObject({
      phase: 'Failed',
      message: expect.stringContaining('EXECUTOR_COPY_NOT_FOUND'),
    });
  }, 300_000);

  it('never shows the store credentials to a step', async () => {
    const { s, run } = setup();
    const r = await run('env');
    expect(r.phase).toBe('Succeeded');
    const step = r.steps[0] as { id: string };
    const dir = s.store.attemptDir('default', r.name, step.id, 1, 'x');
    const parent = join(dir, '..');
    const attempt = readdirSync(parent)[0] as string;
    const out = readFileSync(join(parent, attempt, 'stdout.log'), 'utf8');
    expect(out).toContain('HOME=');
    expect(out).not.toContain(fake.env.AWS_SECRET_ACCESS_KEY);
    expect(out).not.toContain('AWS_');
  });
});

describe('a copy that is stopped', () => {
  it('leaves no temporary file and no object when its step is killed (the abort signal)', async () => {
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'meson-s3-abort-')));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const big = randomBytes(16 * 1024 * 1024);
    await fake.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'team-a/abort/big.bin', Body: big }));
    writeFileSync(join(dir, 'local.bin'), big);
    const client = s3ClientFor(fake.env);
    cleanups.push(() => client.destroy());
    for (const [from, to] of [
      [
        { kind: 's3', loc: { bucket: BUCKET, key: 'team-a/abort/big.bin' } },
        { kind: 'local', path: join(dir, 'down.bin') },
      ],
      [
        { kind: 'local', path: join(dir, 'local.bin') },
        { kind: 's3', loc: { bucket: BUCKET, key: 'team-a/abort/up.bin' } },
      ],
    ] as const) {
      const abort = new AbortController();
      const copying = copyWithStore(from, to, {
        client,
        roots: [dir],
        limits: DEFAULT_COPY_LIMITS,
        signal: abort.signal,
      });
      setTimeout(() => abort.abort(), 5);
      await expect(copying).rejects.toThrow();
    }
    expect(readdirSync(dir)).toEqual(['local.bin']);
    expect(await keys(BUCKET, 'team-a/abort/')).toEqual(['team-a/abort/big.bin']);
  });
});

describe('a copy step in a step Pod (operator mode)', () => {
  const POD_EXECUTOR = fileURLToPath(new URL('../../executors/pod.ts', import.meta.url));

  /** Runs the Pod buildPod makes as the kubelet would: its env, plus the Secret's keys (envFrom). */
  function runPod(from: string, to: string) {
    const pod = buildPod(
      {
        namespace: 'team-a',
        run: 'r1',
        workflow: 'w',
        instance: 'c',
        attempt: 1,
        step: { name: 'c', type: 'copy', copy: { from, to } },
      },
      { launchId: 'l1', launchedAt: 1, node: 'n1' },
      { copy: { roots: [ROOT_URI], secretName: 'meson-s3' } },
    );
    const c = pod.spec!.containers[0]!;
    expect(c.envFrom).toEqual([{ secretRef: { name: 'meson-s3' } }]);
    const dir = realpathSync(mkdtempSync(join(tmpdir(), 'meson-s3-pod-')));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const term = join(dir, 'termination-log');
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...fake.env, // the Secret's keys
      MESON_WORK_DIR: join(dir, 'work'),
      MESON_TERMINATION_MESSAGE_PATH: term,
    };
    for (const e of c.env ?? []) env[e.name] = e.value ?? ''; // env entries win over envFrom
    const res = spawnSync(process.execPath, [POD_EXECUTOR], { env, encoding: 'utf8', timeout: 60_000 });
    return { code: res.status, message: readFileSync(term, 'utf8') };
  }

  it("copies server-side between the roots with the Secret's configuration, and refuses outside them", async () => {
    const data = randomBytes(3 * 1024 * 1024);
    await fake.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'team-a/pod/src.bin', Body: data }));
    const ok = runPod(`${ROOT_URI}pod/src.bin`, `${ROOT_URI}pod/dst.bin`);
    expect(ok, ok.message).toMatchObject({ code: 0 });
    expect((await object(BUCKET, 'team-a/pod/dst.bin')).equals(data)).toBe(true);
    for (const [from, to, code] of [
      [`s3://${BUCKET}/secret/keys.txt`, `${ROOT_URI}pod/stolen`, 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      [`${ROOT_URI}pod/src.bin`, `s3://${OTHER}/x`, 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
      [`${ROOT_URI}%2e%2e/secret/keys.txt`, `${ROOT_URI}pod/stolen`, 'EXECUTOR_COPY_PATH'],
      ['/etc/passwd', `${ROOT_URI}pod/stolen`, 'EXECUTOR_COPY_OUTSIDE_ROOTS'],
    ]) {
      const r = runPod(from as string, to as string);
      expect(r.code, `${from} -> ${to}`).toBe(1);
      expect(r.message, `${from} -> ${to}`).toContain(code);
    }
    expect(await keys(BUCKET, 'team-a/pod/')).toEqual(['team-a/pod/dst.bin', 'team-a/pod/src.bin']);
    expect(await keys(OTHER)).toEqual([]);
  });
});
