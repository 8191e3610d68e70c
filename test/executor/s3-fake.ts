// An S3-compatible store for tests: gofakes3 (built by scripts/s3-fake/build.sh from the Go module
// proxy, cached under ~/.cache/meson-k8s), in memory, on a free loopback port. It answers the
// real S3 wire protocol (SigV4, ListObjectsV2, CopyObject, multipart uploads), so the executor's
// AWS SDK client talks to it as it would to S3 or MinIO.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { s3ClientConfig } from '../../executors/copy-s3.ts';
import { freePorts } from '../cluster/health.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let bin: string | undefined;

/** The gofakes3 binary: built on first use (seconds when cached; CI builds it before the tests). */
export function s3FakeBinary(): string {
  if (bin) return bin;
  const r = spawnSync('bash', [join(ROOT, 'scripts', 's3-fake', 'build.sh')], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
    timeout: 1_800_000,
  });
  if (r.status !== 0) throw new Error(`scripts/s3-fake/build.sh failed: ${r.stderr}`);
  bin = join(r.stdout.trim().split('\n').at(-1) as string, 'gofakes3');
  return bin;
}

export interface S3Fake {
  endpoint: string;
  /** The AWS_* variables an admin would set for it (static test keys, path-style addressing). */
  env: Record<string, string>;
  client: S3Client;
  stop(): Promise<void>;
}

async function listening(port: number, child: ChildProcess, ms: number): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gofakes3 exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((res) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`gofakes3 did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts an empty in-memory store on 127.0.0.1 and creates `buckets`. */
export async function startS3Fake(buckets: string[]): Promise<S3Fake> {
  const [port] = await freePorts(1);
  const child = spawn(s3FakeBinary(), ['-backend', 'memory', '-host', `127.0.0.1:${port}`, '-quiet'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await listening(port as number, child, 30_000);
  const endpoint = `http://127.0.0.1:${port}`;
  const env = {
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'meson-test-key',
    AWS_SECRET_ACCESS_KEY: 'meson-test-secret',
    MESON_S3_FORCE_PATH_STYLE: 'true',
  };
  const client = new S3Client(s3ClientConfig(env));
  for (const b of buckets) await client.send(new CreateBucketCommand({ Bucket: b }));
  return {
    endpoint,
    env,
    client,
    stop: async () => {
      client.destroy();
      if (child.exitCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    },
  };
}
