// The images cannot be built here (no Docker daemon): these checks keep the Dockerfiles honest
// against what runs them. The executor image must start the program the Pod launcher expects,
// where it expects it, as a non-root user; the operator image must start `mesonctl operator`.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_EXECUTOR_COMMAND,
  DEFAULT_EXECUTOR_IMAGE,
  DEFAULT_SPARK_IMAGE,
  WORK_DIR,
} from '../../src/launchers/kubernetes-pod.ts';
import { ROOT } from './helm.ts';

/** Instructions of a Dockerfile: [INSTRUCTION, rest] with continuation lines joined. */
function instructions(file: string): [string, string][] {
  const text = readFileSync(file, 'utf8').replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)\s+(.*)$/.exec(l)!;
      return [m[1]!.toUpperCase(), m[2]!];
    });
}

const last = (ins: [string, string][], name: string) => ins.filter(([n]) => n === name).at(-1)?.[1];
/** The value of `ARG name=value` (the last one). */
const arg = (ins: [string, string][], name: string) =>
  ins
    .filter(([n, r]) => n === 'ARG' && r.startsWith(`${name}=`))
    .at(-1)?.[1]
    .slice(name.length + 1);

describe('executors/Dockerfile', () => {
  const file = join(ROOT, 'executors', 'Dockerfile');
  const ins = instructions(file);

  it('starts the command the Pod launcher runs, which execs executors/pod.ts', () => {
    expect(JSON.parse(last(ins, 'ENTRYPOINT')!)).toEqual(DEFAULT_EXECUTOR_COMMAND);
    const run = ins
      .filter(([n]) => n === 'RUN')
      .map(([, r]) => r)
      .join(' ');
    const wrapper = new RegExp(`/usr/local/bin/${DEFAULT_EXECUTOR_COMMAND[0]}\\b`);
    expect(run).toMatch(wrapper);
    const target = /exec node (\/opt\/meson\/executors\/[\w.-]+\.ts)/.exec(run)?.[1];
    expect(target).toBe('/opt/meson/executors/pod.ts');
    // pod.ts is the file that runs when started as a program
    expect(readFileSync(join(ROOT, 'executors', 'pod.ts'), 'utf8')).toContain('process.argv[1]');
    const copy = ins.find(([n, r]) => n === 'COPY' && r.includes('executors/'))?.[1] ?? '';
    expect(copy).toMatch(/executors\/\*\.ts \/opt\/meson\/executors\/$/);
  });

  it("runs as a non-root user in the launcher's work directory", () => {
    const user = last(ins, 'USER')!;
    expect(user).not.toMatch(/^(0|root)(:|$)/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
    expect(last(ins, 'WORKDIR')).toBe(WORK_DIR);
    expect(last(ins, 'ENV')).toBe(`MESON_WORK_DIR=${WORK_DIR}`);
  });

  it('is based on a pinned Node 24 slim image', () => {
    expect(arg(ins, 'NODE_IMAGE')).toMatch(/^node:24\.\d+\.\d+-slim$/);
    expect(last(ins, 'FROM')).toBe('${NODE_IMAGE}');
  });

  it('needs nothing but executors/*.ts and the AWS SDK it installs: no other npm package, no file outside executors/', () => {
    const sdk = ['@aws-sdk/client-s3', '@aws-sdk/lib-storage'];
    for (const f of readdirSync(join(ROOT, 'executors')).filter(
      (x) => x.endsWith('.ts') && !x.endsWith('.test.ts'),
    )) {
      const text = readFileSync(join(ROOT, 'executors', f), 'utf8');
      for (const m of text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)) {
        if (sdk.includes(m[1] as string)) continue;
        expect(m[1], `${f} imports ${m[1]}`).toMatch(/^(node:|\.\/[\w.-]+\.ts$)/);
      }
    }
    // the image installs exactly those packages, at the versions package-lock.json pins
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version: string }>;
    };
    const version = arg(ins, 'AWS_SDK_VERSION');
    for (const p of sdk) expect(lock.packages[`node_modules/${p}`]?.version, p).toBe(version);
    const install = ins.find(([n, r]) => n === 'RUN' && r.includes('npm install'))?.[1] ?? '';
    expect(install).toContain('--omit=dev');
    expect([...install.matchAll(/"(@[\w./-]+)@\$\{AWS_SDK_VERSION\}"/g)].map((m) => m[1])).toEqual(sdk);
  });

  it('is the image the launcher names by default (ghcr.io/meson-k8s/executor)', () => {
    expect(readFileSync(join(ROOT, 'executors', 'Dockerfile'), 'utf8')).toContain(DEFAULT_EXECUTOR_IMAGE);
  });
});

describe('executors/spark.Dockerfile', () => {
  const file = join(ROOT, 'executors', 'spark.Dockerfile');
  const ins = instructions(file);

  it('adds the executor program to a pinned Apache Spark image, keeping Spark’s entrypoint for its executors', () => {
    const args = ins.filter(([n]) => n === 'ARG').map(([, a]) => a);
    expect(args).toContainEqual(
      expect.stringMatching(/^SPARK_IMAGE=apache\/spark:3\.\d+\.\d+-java\d+-python3$/),
    );
    expect(args).toContainEqual(expect.stringMatching(/^NODE_IMAGE=node:24\.\d+\.\d+-slim$/));
    expect(last(ins, 'FROM')).toBe('${SPARK_IMAGE}');
    // no ENTRYPOINT of ours: Spark's executor Pods start through the base image's
    expect(last(ins, 'ENTRYPOINT')).toBeUndefined();
    const run = ins
      .filter(([n]) => n === 'RUN')
      .map(([, r]) => r)
      .join(' ');
    expect(run).toMatch(new RegExp(`/usr/local/bin/${DEFAULT_EXECUTOR_COMMAND[0]}\\b`));
    expect(/exec node (\/opt\/meson\/executors\/[\w.-]+\.ts)/.exec(run)?.[1]).toBe(
      '/opt/meson/executors/pod.ts',
    );
    expect(readFileSync(file, 'utf8')).toContain(DEFAULT_SPARK_IMAGE);
  });

  it('runs as a numeric non-root user (runAsNonRoot checks it) in the work directory, spark-submit on the PATH', () => {
    const user = last(ins, 'USER')!;
    expect(user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(last(ins, 'WORKDIR')).toBe(WORK_DIR);
    const env = last(ins, 'ENV')!;
    expect(env).toContain(`MESON_WORK_DIR=${WORK_DIR}`);
    expect(env).toMatch(/PATH=\/opt\/spark\/bin:/);
  });
});

describe('docker/operator.Dockerfile', () => {
  const ins = instructions(join(ROOT, 'docker', 'operator.Dockerfile'));

  it('starts bin/mesonctl.js with `operator` by default, as non-root, with the chart image name', () => {
    expect(JSON.parse(last(ins, 'ENTRYPOINT')!)).toEqual(['node', '/opt/meson/bin/mesonctl.js']);
    expect(JSON.parse(last(ins, 'CMD')!)).toEqual(['operator']);
    expect(last(ins, 'USER')).not.toMatch(/^(0|root)(:|$)/);
    const values = readFileSync(join(ROOT, 'charts', 'meson', 'values.yaml'), 'utf8');
    const repo = /^\s+repository: (\S+)/m.exec(values)![1];
    expect(readFileSync(join(ROOT, 'docker', 'operator.Dockerfile'), 'utf8')).toContain(`-t ${repo}:`);
  });
});
