// The client verbs of mesonctl (submit --watch, get, logs, stop, restart, backfill) against a
// real `mesonctl server` process on a free port with a temporary data directory.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/cli.ts';
import { type ServerProcess, startServer } from './server-process.ts';

const DSL = fileURLToPath(new URL('../../src/dsl/index.ts', import.meta.url));
const TOKEN = 'cli-test-token';
let server: ServerProcess;
let root = '';

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'meson-client-cli-'));
  server = await startServer({ cwd: root, dataDir: join(root, 'data'), env: { MESON_API_TOKEN: TOKEN } });
}, 60_000);
afterAll(async () => {
  await server?.kill();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function cli(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const stdin = new PassThrough();
  stdin.end(opts.stdin ?? '');
  const code = await runCli(args, {
    stdout: (s) => void out.push(s),
    stderr: (s) => void err.push(s),
    stdin,
    cwd: root,
    env: { MESON_SERVER: server.url, MESON_API_TOKEN: TOKEN, ...opts.env },
  });
  return { code, out: out.join(''), err: err.join('') };
}

const FAILING = `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata:
  name: flaky
spec:
  parameters:
    - name: ok
      type: string
      value: "no"
  definition:
    sequence:
      - step:
          name: prepare
          shell:
            script: echo preparing
      - step:
          name: check
          shell:
            script: |
              echo "checking" >&2
              for i in $(seq 1 30); do echo "noise $i" >&2; done
              echo "the input is bad" >&2
              test "\${ok}" = yes
`;

describe('mesonctl client verbs against a running server', () => {
  it('submit --watch follows a run to its end; a failure exits 1 with the tail of stderr and where the log is', async () => {
    writeFileSync(join(root, 'flaky.yaml'), FAILING);
    const failed = await cli(['submit', 'flaky.yaml', '--watch']);
    expect(failed.code, failed.err).toBe(1);
    expect(failed.err).toContain('workflow default/flaky created');
    expect(failed.out).toMatch(/✔ prepare {2}Succeeded/);
    expect(failed.out).toMatch(/Phase: {6}Failed/);
    expect(failed.out).toMatch(/✖ check +Failed/);
    expect(failed.err).toContain('the input is bad');
    expect(failed.err).toContain('noise 30');
    expect(failed.err).not.toContain('noise 5\n'); // only the last lines
    expect(failed.err).toMatch(/full log: mesonctl logs flaky-\w+ check -n default/);

    // the same file again, from stdin, with a parameter that makes it pass: exit 0
    const ok = await cli(['submit', '-', '--watch', '-p', 'ok=yes'], { stdin: FAILING });
    expect(ok.code, ok.err).toBe(0);
    expect(ok.err).toContain('workflow default/flaky applied');
    expect(ok.out).toMatch(/Phase: {6}Succeeded/);
  }, 60_000);

  it('get runs lists newest first, filters, and get run shows the tree; -o json|yaml', async () => {
    const list = await cli(['get', 'runs']);
    expect(list.code, list.err).toBe(0);
    const lines = list.out.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME +WORKFLOW +PHASE +AGE/);
    expect(lines[1]).toMatch(/Succeeded/); // the newest: the second submit
    expect(lines[2]).toMatch(/Failed/);
    const failed = await cli(['get', 'runs', '--phase', 'Failed', '-o', 'json']);
    const items = JSON.parse(failed.out).items as { metadata: { name: string } }[];
    expect(items).toHaveLength(1);
    const name = items[0]!.metadata.name;
    const tree = await cli(['get', 'run', name]);
    expect(tree.code).toBe(0);
    expect(tree.out).toMatch(/STEP +PHASE +ATTEMPTS/);
    expect(tree.out).toMatch(/✖ check +Failed +1/);
    expect((await cli(['get', 'run', name, '-o', 'yaml'])).out).toMatch(/^kind: WorkflowRun$/m);
    const bad = await cli(['get', 'runs', '--phase', 'failed']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/phase: expected one of .*\[API_BAD_REQUEST\]/);
    const logs = await cli(['logs', name, 'check']);
    expect(logs.out).toContain('the input is bad');
    const all = await cli(['logs', name]);
    expect(all.out).toContain('prepare | preparing');
    expect(all.out).toContain('check | the input is bad');
  }, 60_000);

  it('restart from failed re-runs what failed, with new parameters, and --watch exits by phase', async () => {
    const failed = JSON.parse((await cli(['get', 'runs', '--phase', 'Failed', '-o', 'json'])).out).items[0];
    const res = await cli(['restart', failed.metadata.name, '-p', 'ok=yes', '--watch']);
    expect(res.code, res.err + res.out).toBe(0);
    expect(res.out).toMatch(/Initiator: +restart/);
    expect((await cli(['restart', 'no-such-run'])).err).toMatch(/API_NOT_FOUND/);
  }, 60_000);

  it('suspend and resume set spec.suspend without making a version', async () => {
    const before = JSON.parse((await cli(['get', 'runs', '-o', 'json'])).out).items.length;
    const res = await cli(['suspend', 'flaky']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toBe('workflow default/flaky: suspended\n');
    const wf = (await (
      await fetch(`${server.url}/api/v1/namespaces/default/workflows/flaky`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      })
    ).json()) as { spec: { suspend?: boolean }; status?: { latestVersion?: number } };
    expect(wf.spec.suspend).toBe(true);
    expect((await cli(['resume', 'flaky'])).out).toBe('workflow default/flaky: resumed\n');
    const after = (await (
      await fetch(`${server.url}/api/v1/namespaces/default/workflows/flaky`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      })
    ).json()) as { spec: { suspend?: boolean }; status?: { latestVersion?: number } };
    expect(after.spec.suspend).toBe(false);
    expect(after.status?.latestVersion).toBe(wf.status?.latestVersion);
    expect(JSON.parse((await cli(['get', 'runs', '-o', 'json'])).out).items.length).toBe(before);
    expect((await cli(['suspend', 'no-such-workflow'])).err).toMatch(/API_NOT_FOUND/);
    expect((await cli(['suspend'])).code).toBe(2);
  }, 60_000);

  it('restart --step re-runs the step and what follows on a Succeeded run, reusing what came before', async () => {
    const ok = JSON.parse((await cli(['get', 'runs', '--phase', 'Succeeded', '-o', 'json'])).out).items[0];
    const res = await cli(['restart', ok.metadata.name, '--step', 'check', '--version', 'active', '--watch']);
    expect(res.code, res.err + res.out).toBe(0);
    const name = /run default\/(\S+) started \(restart of \S+ from step check\)/.exec(res.err)?.[1];
    expect(name, res.err).toBeDefined();
    const steps = JSON.parse((await cli(['get', 'run', name!, '-o', 'json'])).out).status.steps as {
      id: string;
      phase: string;
      message?: string;
    }[];
    const byId = Object.fromEntries(steps.map((s) => [s.id, s]));
    expect(byId.prepare?.message).toBe(`reused from run ${ok.metadata.name}`);
    expect(byId.check).toMatchObject({ phase: 'Succeeded', attempts: 1 });
    expect(byId.check?.message ?? '').not.toMatch(/reused/);
    const bad = await cli(['restart', ok.metadata.name, '--step', 'nope']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/no step named "nope"/);
    expect((await cli(['restart', ok.metadata.name, '--step', 'check', '--from', 'failed'])).code).toBe(2);
    expect((await cli(['restart', ok.metadata.name, '--version', '1e2'])).code).toBe(2);
  }, 60_000);

  it('logs -f follows a running step to its end; stop stops a run', async () => {
    writeFileSync(
      join(root, 'slow.yaml'),
      `apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata:
  name: slow
spec:
  definition:
    step:
      name: tick
      shell:
        script: |
          for i in 1 2 3; do echo "tick $i"; sleep 0.3; done
`,
    );
    const started = await cli(['submit', 'slow.yaml', '-o', 'json']);
    expect(started.code, started.err).toBe(0);
    const name = JSON.parse(started.out).metadata.name as string;
    // the step may not have started yet: follow waits for it
    const followed = await cli(['logs', name, 'tick', '-f']);
    expect(followed.code, followed.err).toBe(0);
    expect(followed.out).toBe('tick 1\ntick 2\ntick 3\n');

    writeFileSync(
      join(root, 'long.yaml'),
      'apiVersion: meson.dev/v1alpha1\nkind: Workflow\nmetadata:\n  name: long\nspec:\n  definition:\n    step:\n      name: wait\n      shell:\n        script: sleep 30\n',
    );
    const long = JSON.parse((await cli(['submit', 'long.yaml', '-o', 'json'])).out).metadata.name as string;
    expect((await cli(['stop', long])).out).toContain('stop requested');
    let phase = '';
    for (let i = 0; i < 100 && phase !== 'Stopped'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      phase = JSON.parse((await cli(['get', 'run', long, '-o', 'json'])).out).status?.phase;
    }
    expect(phase).toBe('Stopped');
  }, 60_000);

  it('submits a DSL program directly, and backfills', async () => {
    writeFileSync(
      join(root, 'daily.workflow.ts'),
      `import { Parameter, Shell, Workflow } from ${JSON.stringify(DSL)};
export default Workflow({
  id: 'daily',
  parameters: [Parameter.long('dateint', 20260101)],
  definition: Shell('show', ['echo "day \${dateint}"']),
});
`,
    );
    const res = await cli(['submit', 'daily.workflow.ts', '--watch']);
    expect(res.code, res.err).toBe(0);
    const bf = await cli([
      'backfill',
      'daily',
      '--param',
      'dateint',
      '--from',
      '20260101',
      '--to',
      '2026-01-03',
    ]);
    expect(bf.code, bf.err).toBe(0);
    expect(bf.out).toMatch(/: 3 runs/);
    const runs = JSON.parse((await cli(['get', 'runs', '--initiator', 'backfill', '-o', 'json'])).out).items;
    expect(runs).toHaveLength(3);
  }, 60_000);

  it('needs the token from the environment, warns about --token, and says where it could not connect', async () => {
    const anon = await cli(['get', 'runs'], { env: { MESON_API_TOKEN: '' } });
    expect(anon.code).toBe(1);
    expect(anon.err).toMatch(/MESON_API_TOKEN.*\[API_UNAUTHORIZED\]/);
    const flag = await cli(['get', 'runs', '--token', TOKEN], { env: { MESON_API_TOKEN: '' } });
    expect(flag.code).toBe(0);
    expect(flag.err).toMatch(/warning: --token is visible in shell history/);
    const down = await cli(['get', 'runs', '--server', 'http://127.0.0.1:9']);
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
    expect((await cli(['get', 'runs', '--server', 'file:///etc/passwd'])).code).toBe(2);
    expect((await cli(['get', 'runs', '-o', 'xml'])).code).toBe(2);
  });
});
