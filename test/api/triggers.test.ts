// biome-ignore-all lint/suspicious/noThenProperty: the workflow API names a branch body `then`
// What triggered a run (TRIGGER, spec.initiator, status.trigger), backfill order, cron slot
// times and spec.suspend, through the REST API against a real standalone stack.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.ts';
import { createStandalone, type Standalone } from '../../src/controller/standalone.ts';
import { tsToDateInt } from '../../src/expr/dates.ts';
import { SqliteAsyncStore } from '../../src/store/sqlite-async.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ app: FastifyInstance; s: Standalone; root: string }> {
  const root = mkdtempSync(join(tmpdir(), 'meson-trigger-'));
  const s = createStandalone({ dataDir: join(root, 'data'), cwd: root, pollMs: 50, cronTickMs: 50 });
  s.start();
  const app = await buildApp({ store: new SqliteAsyncStore(s.store) });
  cleanups.push(() => rmSync(root, { recursive: true, force: true }));
  cleanups.push(() => s.stop());
  cleanups.push(() => app.close());
  return { app, s, root };
}

const NS = '/api/v1/namespaces/team-a';

interface RunJson {
  metadata: { name: string };
  spec: { initiator: { type: string; scheduledTime?: string; date?: number } };
  status: {
    phase: string;
    parameters: Record<string, unknown>;
    trigger?: Record<string, unknown>;
  };
}

function workflow(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'meson.dev/v1alpha1', kind: 'Workflow', metadata: { name }, spec };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(30);
  }
}

async function finished(app: FastifyInstance, name: string): Promise<RunJson> {
  return until(`run ${name}`, async () => {
    const run = (await app.inject({ method: 'GET', url: `${NS}/runs/${name}` })).json() as RunJson;
    return ['Succeeded', 'Failed', 'Stopped'].includes(run.status?.phase) ? run : undefined;
  });
}

function runsOf(s: Standalone, wf: string): RunJson[] {
  return s.store
    .list('WorkflowRun', 'team-a')
    .items.filter((r) => (r.spec as { workflow: string }).workflow === wf) as unknown as RunJson[];
}

/** The date a run is about: the triggering partition's, else today's (a manual run). */
const DATEINT =
  'TRIGGER.artifacts?.[0]?.partition?.dateint != null ? long(TRIGGER.artifacts[0].partition.dateint) : tsToDateInt(RUN_TS)';

describe('what triggered a run', () => {
  it("gives an artifact-triggered run the triggering partition, and a manual run today's date", async () => {
    const { app, s } = await setup();
    const created = await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('agg', {
        parameters: [{ name: 'dateint', type: 'long', value: `\${${DATEINT}}` }],
        triggers: { artifacts: [{ name: 'views' }] },
        definition: { step: { name: 'a', noop: {} } },
      }),
    });
    expect(created.statusCode).toBe(201);
    await app.inject({
      method: 'POST',
      url: `${NS}/artifacts`,
      payload: {
        name: 'views',
        partition: { dateint: 20200105, country: 'US' },
        location: 's3://v/20200105',
      },
    });
    const fired = await until('an artifact run', async () => runsOf(s, 'agg')[0]);
    const run = await finished(app, fired.metadata.name);
    expect(run.status.phase).toBe('Succeeded');
    expect(run.status.parameters.dateint).toBe(20200105);
    expect(run.spec.initiator).toEqual({
      type: 'artifact',
      artifacts: [
        { name: 'views', partition: { dateint: 20200105, country: 'US' }, location: 's3://v/20200105' },
      ],
    });
    expect(run.status.trigger).toEqual(run.spec.initiator);

    const manual = (await app.inject({ method: 'POST', url: `${NS}/workflows/agg/runs` })).json();
    const done = await finished(app, manual.metadata.name);
    expect(done.status.parameters.dateint).toBe(tsToDateInt(Date.now(), 'UTC'));
    expect(done.status.trigger).toEqual({ type: 'api' });
    // a client cannot claim a trigger to steer TRIGGER
    const forged = await app.inject({
      method: 'POST',
      url: `${NS}/runs`,
      payload: {
        metadata: { name: 'forged' },
        spec: { workflow: 'agg', initiator: { type: 'manual', artifacts: [{ name: 'views' }] } },
      },
    });
    expect(forged.statusCode).toBe(422);
    expect(forged.body).toContain('spec.initiator.artifacts');
    // the same claim through the workflow's start route, in each trigger field
    for (const claim of [
      { scheduledTime: '2020-01-01T00:00:00Z' },
      { date: 20200101 },
      { artifacts: [{ name: 'views', partition: { dateint: 20200101 } }] },
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: `${NS}/workflows/agg/runs`,
        payload: { initiator: { type: 'manual', ...claim } },
      });
      expect(res.statusCode, JSON.stringify(claim)).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
    }
    expect(runsOf(s, 'agg')).toHaveLength(2);
  });

  it('starts backfill runs oldest date first and gives each its date as TRIGGER.date', async () => {
    const { app, root } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('daily', {
        parameters: [
          { name: 'dateint', type: 'long', value: 0 },
          { name: 'date', type: 'long', value: '${TRIGGER.date != null ? TRIGGER.date : 0}' },
        ],
        definition: { step: { name: 'd', shell: { script: 'echo ${dateint} ${date} >> days.log' } } },
      }),
    });
    const res = await app.inject({
      method: 'POST',
      url: `${NS}/workflows/daily/backfill`,
      payload: { parameter: 'dateint', from: 20240128, to: 20240203, parallelism: 1 },
    });
    expect(res.statusCode).toBe(201);
    const runs = await Promise.all(res.json().runs.map((n: string) => finished(app, n)));
    expect(runs.map((r) => r.status.phase).every((p) => p === 'Succeeded')).toBe(true);
    const days = [20240128, 20240129, 20240130, 20240131, 20240201, 20240202, 20240203];
    expect(readFileSync(join(root, 'days.log'), 'utf8').trim().split('\n')).toEqual(
      days.map((d) => `${d} ${d}`),
    );
    for (const r of runs)
      expect(r.status.trigger).toEqual({ type: 'backfill', date: r.status.parameters.dateint });
  });

  it('gives a cron run its exact slot as TRIGGER.scheduledTime and RUN_TS', async () => {
    const { app, s } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('tick', {
        parameters: [
          { name: 'ts', type: 'long', value: '${RUN_TS}' },
          { name: 'slot', type: 'string', value: '${TRIGGER.scheduledTime}' },
        ],
        triggers: { cron: [{ schedule: '* * * * * ?' }] },
        definition: { step: { name: 'a', noop: {} } },
      }),
    });
    const fired = await until('a cron run', async () => runsOf(s, 'tick')[0], 5_000);
    await app.inject({
      method: 'PUT',
      url: `${NS}/workflows/tick`,
      payload: workflow('tick', {
        suspend: true,
        triggers: { cron: [{ schedule: '* * * * * ?' }] },
        definition: { step: { name: 'a', noop: {} } },
        parameters: [
          { name: 'ts', type: 'long', value: '${RUN_TS}' },
          { name: 'slot', type: 'string', value: '${TRIGGER.scheduledTime}' },
        ],
      }),
    });
    const run = await finished(app, fired.metadata.name);
    const slot = run.spec.initiator.scheduledTime!;
    expect(slot).toMatch(/\.000Z$/);
    expect(run.status.parameters.ts).toBe(Date.parse(slot));
    expect(run.status.parameters.slot).toBe(slot);
    expect(run.status.trigger).toEqual({ type: 'cron', scheduledTime: slot });
  });
});

describe('cron status and suspend', () => {
  it('sets nextScheduleTime before the first fire', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('later', {
        triggers: { cron: [{ schedule: '0 0 0 1 1 ? 2099' }, { schedule: '0 0 0 1 1 ? 2098' }] },
        definition: { step: { name: 'a', noop: {} } },
      }),
    });
    const status = await until('nextScheduleTime', async () => {
      const wf = (await app.inject({ method: 'GET', url: `${NS}/workflows/later` })).json();
      return wf.status?.nextScheduleTime ? wf.status : undefined;
    });
    expect(status.nextScheduleTime).toBe('2098-01-01T00:00:00.000Z');
    expect(status.lastScheduleTime).toBeUndefined();
  });

  it('pauses cron and artifact triggers while suspended and does not catch up on resume', async () => {
    const { app, s } = await setup();
    const spec = (suspend: boolean) => ({
      suspend,
      triggers: { cron: [{ schedule: '* * * * * ?' }], artifacts: [{ name: 'clicks' }] },
      definition: { step: { name: 'a', noop: {} } },
    });
    await app.inject({ method: 'POST', url: `${NS}/workflows`, payload: workflow('paused', spec(true)) });
    await app.inject({
      method: 'POST',
      url: `${NS}/artifacts`,
      payload: { name: 'clicks', partition: { dateint: 20200101 } },
    });
    await sleep(2_300);
    expect(runsOf(s, 'paused')).toEqual([]);
    const wf = (await app.inject({ method: 'GET', url: `${NS}/workflows/paused` })).json();
    expect(wf.status.nextScheduleTime).toBeUndefined();

    const resumedAt = Date.now();
    const put = await app.inject({
      method: 'PUT',
      url: `${NS}/workflows/paused`,
      payload: workflow('paused', spec(false)),
    });
    expect(put.json().status.latestVersion).toBe(1); // suspend is a switch, not a new version
    const first = await until('a cron run after resume', async () => runsOf(s, 'paused')[0], 5_000);
    await app.inject({
      method: 'PUT',
      url: `${NS}/workflows/paused`,
      payload: workflow('paused', spec(true)),
    });
    // no slot of the suspended time ran, and the artifact announced meanwhile fired nothing
    const runs = runsOf(s, 'paused');
    expect(runs.every((r) => r.spec.initiator.type === 'cron')).toBe(true);
    expect(Date.parse(first.spec.initiator.scheduledTime!)).toBeGreaterThanOrEqual(
      Math.floor(resumedAt / 1000) * 1000,
    );
    for (const r of runs)
      expect(Date.parse(r.spec.initiator.scheduledTime!)).toBeGreaterThan(resumedAt - 1000);
  });
});

describe('calm answers about finished and reused work', () => {
  it('answers 409 to stopping a run that is already stopped', async () => {
    const { app } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('slow', { definition: { step: { name: 'a', shell: { script: 'sleep 30' } } } }),
    });
    const run = (await app.inject({ method: 'POST', url: `${NS}/workflows/slow/runs` })).json().metadata.name;
    expect((await app.inject({ method: 'POST', url: `${NS}/runs/${run}/stop` })).statusCode).toBe(202);
    expect((await finished(app, run)).status.phase).toBe('Stopped');
    const again = await app.inject({ method: 'POST', url: `${NS}/runs/${run}/stop` });
    expect(again.statusCode).toBe(409);
    expect(again.json().detail).toContain('already ended (Stopped)');
  });

  it('says a skipped step has no logs, and shows a reused step the logs of the run that ran it', async () => {
    const { app } = await setup();
    const spec = (fixed: boolean) => ({
      definition: {
        sequence: [
          { step: { name: 'a', shell: { script: 'echo hello from a' } } },
          {
            xor: [
              { when: 'false', then: { step: { name: 'never', noop: {} } } },
              { otherwise: { step: { name: 'b', shell: { script: fixed ? 'echo fixed' : 'exit 3' } } } },
            ],
          },
        ],
      },
    });
    await app.inject({ method: 'POST', url: `${NS}/workflows`, payload: workflow('fix', spec(false)) });
    const first = (await app.inject({ method: 'POST', url: `${NS}/workflows/fix/runs` })).json().metadata
      .name;
    expect((await finished(app, first)).status.phase).toBe('Failed');
    const skipped = await app.inject({ method: 'GET', url: `${NS}/runs/${first}/steps/never/logs` });
    expect(skipped.statusCode).toBe(200);
    expect(skipped.body).toMatch(/^step "never" was skipped \(.+\): it never ran and has no logs\n$/);

    // the fix is version 2; restarting from failed on it runs b again and reuses a
    await app.inject({ method: 'PUT', url: `${NS}/workflows/fix`, payload: workflow('fix', spec(true)) });
    const restart = await app.inject({
      method: 'POST',
      url: `${NS}/runs/${first}/restart`,
      payload: { from: 'failed', version: 'active' },
    });
    expect(restart.statusCode).toBe(201);
    expect(restart.json().spec.version).toBe(2);
    const second = await finished(app, restart.json().metadata.name);
    expect(second.status.phase).toBe('Succeeded');
    const logs = await app.inject({ method: 'GET', url: `${NS}/runs/${second.metadata.name}/steps/a/logs` });
    expect(logs.statusCode).toBe(200);
    expect(logs.body).toBe('hello from a\n');
    expect(logs.headers['x-meson-logs-from-run']).toBe(first);
    const b = await app.inject({ method: 'GET', url: `${NS}/runs/${second.metadata.name}/steps/b/logs` });
    expect(b.body).toBe('fixed\n');
    // a version that does not exist is refused before any run is made
    const missing = await app.inject({
      method: 'POST',
      url: `${NS}/runs/${first}/restart`,
      payload: { version: 9 },
    });
    expect(missing.statusCode).toBe(422);
  });
});

describe('TRIGGER from hostile announcements', () => {
  it('refuses __proto__ partition keys and carries other internal-looking keys and shell-looking values as data', async () => {
    const { app, s } = await setup();
    await app.inject({
      method: 'POST',
      url: `${NS}/workflows`,
      payload: workflow('probe', {
        parameters: [
          { name: 'n', type: 'long', value: '${len(keys(TRIGGER.artifacts[0].partition))}' },
          { name: 'd', type: 'string', value: '${str(TRIGGER.artifacts[0].partition.dateint)}' },
        ],
        triggers: { artifacts: [{ name: 'evil' }] },
        definition: { step: { name: 'a', shell: { script: 'echo "${d}"' } } },
      }),
    });
    // __proto__ never reaches a trigger: the API refuses it
    for (const key of ['__proto__']) {
      const res = await app.inject({
        method: 'POST',
        url: `${NS}/artifacts`,
        headers: { 'content-type': 'application/json' },
        payload: `{"name":"evil","partition":{"${key}":"x","dateint":"1"}}`,
      });
      expect(res.statusCode, key).toBe(400);
    }
    expect(runsOf(s, 'probe')).toEqual([]);
    // a value made to look like shell travels as data into the step
    const announced = await app.inject({
      method: 'POST',
      url: `${NS}/artifacts`,
      payload: {
        name: 'evil',
        partition: { dateint: '$(touch pwned); `id`', constructor: 'y', toString: 'z' },
      },
    });
    expect(announced.statusCode).toBe(201);
    const fired = await until('a run', async () => runsOf(s, 'probe')[0]);
    const run = await finished(app, fired.metadata.name);
    expect(run.status.phase).toBe('Succeeded');
    expect(run.status.parameters.d).toBe('$(touch pwned); `id`');
    // constructor and toString are plain own keys of the partition (and unreadable by name)
    expect(run.status.parameters.n).toBe(3);
    const logs = await app.inject({ method: 'GET', url: `${NS}/runs/${run.metadata.name}/steps/a/logs` });
    expect(logs.body).toBe('$(touch pwned); `id`\n');
  });
});
