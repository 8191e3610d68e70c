// The live parts of the web UI in headless Chromium against a real `mesonctl server` (with a
// token): a run page and the runs table that follow the server's event streams (no polling
// loop), the Gantt chart of attempts, the diff and rollback of versions, a restart with a new
// parameter value, a backfill, and a step waiting for its input. Screenshots go under
// test/ui/__screenshots__ at 1280x800 and at phone width.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type ServerProcess, startServer } from '../standalone/server-process.ts';
import { launch, SHOTS } from './browser.ts';

const TOKEN = 'ui-live-token-0123456789';
const NS = '/api/v1/namespaces/default';
let server: ServerProcess;
let browser: Browser;
let root = '';
/** Shell that waits (at most 60 s) until the test creates `name` in the test's directory. */
const gate = (name: string) => `for i in $(seq 600); do [ -f '${root}/${name}' ] && break; sleep 0.1; done`;

const workflow = (name: string, definition: unknown, parameters: unknown[] = []) => ({
  apiVersion: 'meson.dev/v1alpha1',
  kind: 'Workflow',
  metadata: { name },
  spec: { description: `UI live test ${name}`, parameters, definition },
});

async function put(wf: ReturnType<typeof workflow>) {
  const res = await api(server.url, 'PUT', `${NS}/workflows/${wf.metadata.name}`, wf, TOKEN);
  expect([200, 201], JSON.stringify(res.body)).toContain(res.status);
  return res.body;
}

async function startRun(name: string, parameters: Record<string, unknown> = {}): Promise<string> {
  const res = await api(server.url, 'POST', `${NS}/workflows/${name}/runs`, { parameters }, TOKEN);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.metadata.name;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'meson-ui-live-'));
  server = await startServer({ cwd: root, dataDir: join(root, 'data'), env: { MESON_API_TOKEN: TOKEN } });
  await put(
    workflow('live-steps', {
      sequence: [
        // each step waits for the test to let it go (a gate file, at most 60 s), so that the page
        // sees it running however slow the machine is
        { step: { name: 'first', shell: { script: `${gate('go-first')}; echo first done` } } },
        {
          step: {
            name: 'second',
            shell: { script: `echo "second says hi"; ${gate('go-second')}; echo bye` },
          },
        },
        { step: { name: 'third', noop: {} } },
      ],
    }),
  );
  await put(
    workflow('live-retry', {
      sequence: [
        {
          step: {
            name: 'flaky',
            shell: {
              script: `if [ ! -f '${root}/tried' ]; then touch '${root}/tried'; echo 'first try fails' >&2; exit 2; fi; echo ok`,
            },
            retry: { limit: 2, backoff: { initialSeconds: 0 } },
          },
        },
        {
          foreach: { items: 'range(60)', as: 'i', parallelism: 20, do: { step: { name: 'many', noop: {} } } },
        },
      ],
    }),
  );
  await put(
    workflow(
      'live-param',
      {
        sequence: [
          { step: { name: 'prepare', shell: { script: 'echo prepared' } } },
          {
            step: {
              name: 'check',
              shell: { script: 'echo "n=${n}"; test "${n}" -ge 2 || { echo "n too small" >&2; exit 4; }' },
            },
          },
        ],
      },
      [{ name: 'n', type: 'long', value: 1 }],
    ),
  );
  await put(
    workflow('live-daily', { step: { name: 'load', noop: {} } }, [
      { name: 'dateint', type: 'long', value: 20240101 },
    ]),
  );
  await put(
    workflow(
      'live-inputs',
      { step: { name: 'consume', noop: {}, inputs: [{ name: 'ui-data', partition: { day: '${day}' } }] } },
      [{ name: 'day', type: 'string', value: '2024-05-01' }],
    ),
  );
  // a consumer: started by the announcement the waiting step needs (lineage on the artifacts page)
  const consumer = workflow('live-consumer', { step: { name: 'use', noop: {} } });
  await put({
    ...consumer,
    spec: { ...consumer.spec, triggers: { artifacts: [{ name: 'ui-data' }] } } as never,
  });
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await server?.kill();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function signedIn(hash = '', viewport = { width: 1280, height: 800 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  await page.addInitScript((t) => sessionStorage.setItem('meson.token', t), TOKEN);
  await page.goto(`${server.url}/${hash}`);
  return page;
}

/** The API requests the page makes, by path and query (the page's own files left out). */
function apiRequests(page: Page): { url: URL; headers: Record<string, string> }[] {
  const seen: { url: URL; headers: Record<string, string> }[] = [];
  page.on('request', (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith('/api/')) seen.push({ url, headers: r.headers() });
  });
  return seen;
}

describe('web UI, live', () => {
  it('changes step states on screen as the run progresses, from the event stream, without polling', async () => {
    const run = await startRun('live-steps');
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const requests = apiRequests(page);
    await page.addInitScript((t) => sessionStorage.setItem('meson.token', t), TOKEN);
    await page.goto(`${server.url}/#/runs/${run}`);
    await page.getByRole('button', { name: /^step first \(shell\): Running/ }).waitFor({ timeout: 30_000 });
    writeFileSync(join(root, 'go-first'), '');
    await page.getByRole('button', { name: /^step second \(shell\): Running/ }).waitFor({ timeout: 30_000 });
    await page.getByText('live', { exact: true }).first().waitFor();
    // the running step's output arrives as it is written (logs?follow=true)
    await page.getByRole('button', { name: /^step second/ }).click();
    const panel = page.getByRole('complementary', { name: 'Step second' });
    await panel.getByText('second says hi').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(SHOTS, 'live-running.png'), fullPage: true });
    writeFileSync(join(root, 'go-second'), '');
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: /^step third \(noop\): Succeeded/ }).waitFor();
    // after the end, the finished attempt's streams are read once each
    await panel.getByText('bye').waitFor();
    const runPath = `${NS}/runs/${run}`;
    const gets = requests.filter((r) => r.url.pathname === runPath);
    const streams = requests.filter((r) => r.url.pathname === `${runPath}/events`);
    const follows = requests.filter((r) => r.url.searchParams.get('follow') === 'true');
    // one GET of the run, one event stream: no request per second over the ~6 s of the run
    expect(gets.length).toBe(1);
    expect(streams.length).toBe(1);
    expect(streams[0]!.url.searchParams.get('resourceVersion')).toMatch(/^\d+$/);
    expect(follows.length).toBe(1);
    expect(requests.length).toBeLessThan(20);
    // the token goes in a header, never in a URL
    expect(streams[0]!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(requests.filter((r) => r.url.toString().includes(TOKEN))).toEqual([]);
    await page.close();
  });

  it('updates the runs table from the runs watch: new runs appear and change phase in place', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const requests = apiRequests(page);
    await page.addInitScript((t) => sessionStorage.setItem('meson.token', t), TOKEN);
    await page.goto(`${server.url}/#/runs?workflow=live-param`);
    await page.getByRole('heading', { name: 'Runs' }).waitFor();
    await page.getByText('live', { exact: true }).waitFor();
    const run = await startRun('live-param', { n: 5 });
    const row = page.getByRole('row', { name: new RegExp(run) });
    await row.waitFor({ timeout: 10_000 });
    await row.getByText('Succeeded').waitFor({ timeout: 60_000 });
    const lists = requests.filter((r) => r.url.pathname === `${NS}/runs` && !r.url.searchParams.has('watch'));
    // the page was read once; the new run and its phases came from the watch
    expect(lists.length).toBe(1);
    expect(requests.filter((r) => r.url.searchParams.get('watch') === 'true').length).toBeLessThanOrEqual(1);
    await page.close();
  });

  it('draws the attempts of each step instance on a timeline, with "show more" for a large foreach', async () => {
    const run = await startRun('live-retry');
    const page = await signedIn(`#/runs/${run}`);
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 90_000 });
    await page.getByRole('tab', { name: 'Timeline' }).click();
    const chart = page.getByRole('table', { name: 'Timeline of attempts' });
    await chart.getByLabel(/^flaky attempt 1: Failed/).waitFor();
    await chart.getByLabel(/^flaky attempt 2: Succeeded/).waitFor();
    // 61 instances: 25 rows first, then 25 more
    await expect.poll(() => chart.getByRole('row').count()).toBe(26);
    await chart.getByRole('button', { name: 'Show 25 more' }).click();
    await expect.poll(() => chart.getByRole('row').count()).toBe(51);
    // a row opens its step's panel
    await chart.getByRole('button', { name: 'flaky' }).click();
    const panel = page.getByRole('complementary', { name: 'Step flaky' });
    await panel.getByRole('cell', { name: 'Failed', exact: true }).waitFor();
    await panel.getByRole('cell', { name: 'Succeeded', exact: true }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'timeline.png'), fullPage: true });
    await chart.screenshot({ path: join(SHOTS, 'timeline-chart.png') });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, 'timeline-phone.png'), fullPage: true });
    await chart.screenshot({ path: join(SHOTS, 'timeline-chart-phone.png') });
    await page.close();
  });

  it('shows the differences between two versions and makes an older one active', async () => {
    const v1 = workflow('live-versions', { step: { name: 'hello', shell: { script: 'echo one' } } });
    await put(v1);
    const v2 = workflow('live-versions', {
      sequence: [
        { step: { name: 'hello', shell: { script: 'echo two' } } },
        { step: { name: 'added', noop: {} } },
      ],
    });
    // what an author writes is shown as text in the diff, never as markup
    await put({
      ...v2,
      spec: { ...v2.spec, description: `<img src=x onerror="document.title='pwned-diff'">` },
    });
    const page = await signedIn('#/workflows/live-versions');
    await page.getByRole('heading', { name: 'Workflow live-versions' }).waitFor();
    await page.getByLabel('Older version').selectOption('1');
    await page.getByLabel('Newer version').selectOption('2');
    await page.getByRole('button', { name: 'Show differences' }).click();
    const diff = page.getByLabel('Differences between version 1 and version 2');
    await diff.getByText('- ', { exact: false }).first().waitFor();
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's innerText keeps the line breaks of block lines
    const text = await diff.innerText();
    expect(text).toMatch(/^- +"script": "echo one"$/m);
    expect(text).toMatch(/^\+ +"script": "echo two"$/m);
    expect(text).toMatch(/^\+ +"name": "added",?$/m);
    expect(text).toContain(`+   "description": "<img src=x onerror=\\"document.title='pwned-diff'\\">"`);
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.title()).toBe('Meson');
    await page.screenshot({ path: join(SHOTS, 'versions-diff.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, 'versions-diff-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
    // rollback: runs now use version 1
    await page.getByRole('button', { name: 'Make version 1 active' }).click();
    await page.getByText(/Runs use version 1 \(pinned/).waitFor();
    const wf = await api(server.url, 'GET', `${NS}/workflows/live-versions`, undefined, TOKEN);
    expect(wf.body.spec.activeVersion).toBe(1);
    expect(wf.body.status.latestVersion).toBe(2);
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 60_000 });
    await page.getByText('live-versions v1').waitFor();
    // and back to following the latest
    await page.goto(`${server.url}/#/workflows/live-versions`);
    await page.getByRole('button', { name: 'Follow the latest version' }).click();
    await page.getByText('Runs use the latest version.').waitFor();
    const after = await api(server.url, 'GET', `${NS}/workflows/live-versions`, undefined, TOKEN);
    expect(after.body.spec.activeVersion).toBeUndefined();
    expect(after.body.status.latestVersion).toBe(2);
    await page.close();
  });

  it('restarts a failed run from a step with a new parameter value, and the new run succeeds', async () => {
    const run = await startRun('live-param');
    const page = await signedIn(`#/runs/${run}`);
    await page.getByRole('heading', { name: /Failed/ }).waitFor({ timeout: 60_000 });
    // from the failed step's panel
    await page.getByRole('button', { name: /^step check \(shell\): Failed/ }).click();
    await page.getByRole('button', { name: 'Restart from this step…' }).click();
    const form = page.getByRole('form', { name: 'Restart with changes' });
    await expect(form.getByLabel('Restart from step').inputValue()).resolves.toBe('check');
    await expect(form.getByRole('radio', { name: /from step/ }).isChecked()).resolves.toBe(true);
    await expect(form.getByLabel(/^n/).inputValue()).resolves.toBe('1');
    await form.getByLabel(/^n/).fill('3');
    await page.screenshot({ path: join(SHOTS, 'restart-form.png'), fullPage: true });
    await form.getByRole('button', { name: 'Restart run' }).click();
    await page.waitForURL((u) => !u.toString().endsWith(run));
    await page.getByText('(from step check)').waitFor();
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 60_000 });
    await page.getByText('"n": 3').waitFor();
    const restarted = page.url().split('/').pop()!;
    const body = (await api(server.url, 'GET', `${NS}/runs/${restarted}`, undefined, TOKEN)).body;
    expect(body.spec.restartOf).toEqual({ run, from: 'step', step: 'check' });
    expect(body.spec.parameters).toEqual([{ name: 'n', value: 3 }]);
    // a value that is not a long is not sent: the field says it is invalid, no run starts
    await page.goto(`${server.url}/#/runs/${run}`);
    await page.getByRole('button', { name: 'Restart with changes…' }).click();
    const input = page.getByRole('form', { name: 'Restart with changes' }).getByLabel(/^n/);
    await input.fill('2.5');
    await page.getByRole('button', { name: 'Restart run' }).click();
    expect(
      await input.evaluate((el) => (el as unknown as { validity: { valid: boolean } }).validity.valid),
    ).toBe(false);
    expect(page.url()).toContain(run);
    await page.close();
  });

  it('starts a backfill over a date range and lists its runs as they finish', async () => {
    const page = await signedIn('#/workflows/live-daily');
    const form = page.getByRole('form', { name: 'Backfill' });
    await form.getByLabel('Date parameter').selectOption('dateint');
    await form.getByLabel('From').fill('2024-01-01');
    await form.getByLabel('To').fill('2024-01-03');
    await form.getByLabel('Runs at once').fill('2');
    await page.screenshot({ path: join(SHOTS, 'backfill-form.png'), fullPage: true });
    await form.getByRole('button', { name: 'Start backfill' }).click();
    await page.waitForURL(/backfill=/);
    await expect
      .poll(() => page.getByRole('row', { name: /live-daily-/ }).count(), { timeout: 30_000 })
      .toBe(3);
    for (const d of ['20240101', '20240102', '20240103'])
      await page
        .getByRole('row', { name: new RegExp(`backfill ${d}`) })
        .getByText('Succeeded')
        .waitFor({ timeout: 60_000 });
    await page.screenshot({ path: join(SHOTS, 'backfill-runs.png'), fullPage: true });
    const runs = await api(server.url, 'GET', `${NS}/runs?initiator=backfill`, undefined, TOKEN);
    expect(runs.body.items).toHaveLength(3);
    await page.close();
  });

  it('says which input a waiting step lacks, and moves on when it is announced', async () => {
    const run = await startRun('live-inputs');
    const page = await signedIn(`#/runs/${run}`);
    await page
      .getByRole('button', { name: /^step consume \(noop\): WaitingForInputs/ })
      .click({ timeout: 30_000 });
    const panel = page.getByRole('complementary', { name: 'Step consume' });
    await panel.getByRole('heading', { name: 'Waiting for' }).waitFor();
    await panel.getByText('day=2024-05-01').waitFor();
    await panel.getByText('missing: the step waits for it').waitFor();
    await page.screenshot({ path: join(SHOTS, 'waiting-for-inputs.png'), fullPage: true });
    const res = await api(
      server.url,
      'POST',
      `${NS}/artifacts`,
      { name: 'ui-data', partition: { day: '2024-05-01' }, location: 's3://bucket/ui-data/2024-05-01' },
      TOKEN,
    );
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 60_000 });
    await panel.getByText('announced').waitFor();
    await page.getByRole('link', { name: 'Artifacts' }).click();
    const row = page.getByRole('row', { name: /s3:\/\/bucket\/ui-data\/2024-05-01/ });
    await row.waitFor();
    // the producer (a client here); the data set's page has its lineage (…/consumers)
    await row.getByText('announced by a client').waitFor();
    await page.screenshot({ path: join(SHOTS, 'artifacts.png'), fullPage: true });
    const requests = apiRequests(page);
    await row.getByRole('link', { name: 'ui-data' }).click();
    await page.getByRole('heading', { name: /ui-data day=2024-05-01/ }).waitFor();
    const workflows = page.getByRole('list', { name: 'Consuming workflows' });
    // the workflow whose trigger names it, and the one whose step waited on it (a template)
    await workflows.getByRole('listitem').filter({ hasText: 'live-consumer — artifact trigger' }).waitFor();
    await workflows
      .getByRole('listitem')
      .filter({ hasText: 'live-inputs — inputs of step consume' })
      .getByText('day=${day}')
      .waitFor();
    // the run the announcement started (the trigger fires at its next evaluation: reload until it shows)
    const started = page
      .getByRole('list', { name: 'Runs it started' })
      .getByRole('link', { name: /^live-consumer-/ });
    for (let i = 0; i < 30 && !(await started.count()); i++) {
      await page.waitForTimeout(1000);
      await page.reload();
    }
    await started.waitFor({ timeout: 5_000 });
    expect(requests.some((r) => r.url.pathname.endsWith('/consumers'))).toBe(true);
    await page.screenshot({ path: join(SHOTS, 'artifact-lineage.png'), fullPage: true });
    await started.click();
    await page.getByRole('heading', { name: /Succeeded|Running|Pending/ }).waitFor({ timeout: 30_000 });
    await page.close();
  });
});
