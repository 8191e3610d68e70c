// The live pages when streams end or are refused, in headless Chromium against a real
// `mesonctl server` whose streams live 2 s (MESON_STREAM_MAX_SECONDS) and of which at most 2 may
// be open (MESON_MAX_STREAMS): the run page resumes from the last resourceVersion, and while the
// server refuses the stream (429) it stays current with plain GETs, then goes live again.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type ServerProcess, startServer } from '../standalone/server-process.ts';
import { launch, SHOTS } from './browser.ts';

const TOKEN = 'ui-reconnect-token-0123456789';
const NS = '/api/v1/namespaces/default';
let server: ServerProcess;
let browser: Browser;
let root = '';

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'meson-ui-reconnect-'));
  server = await startServer({
    cwd: root,
    dataDir: join(root, 'data'),
    env: { MESON_API_TOKEN: TOKEN, MESON_STREAM_MAX_SECONDS: '2', MESON_MAX_STREAMS: '2' },
  });
  const wf = {
    apiVersion: 'meson.dev/v1alpha1',
    kind: 'Workflow',
    metadata: { name: 'slow-steps' },
    spec: {
      definition: {
        sequence: [
          { step: { name: 'one', shell: { script: 'sleep 3' } } },
          { step: { name: 'two', shell: { script: 'sleep 3' } } },
          { step: { name: 'three', noop: {} } },
        ],
      },
    },
  };
  expect((await api(server.url, 'POST', `${NS}/workflows`, wf, TOKEN)).status).toBe(201);
  const talk = {
    ...wf,
    metadata: { name: 'talk-slowly' },
    spec: { definition: { step: { name: 'talk', shell: { script: 'echo hello-from-talk; sleep 6' } } } },
  };
  expect((await api(server.url, 'POST', `${NS}/workflows`, talk, TOKEN)).status).toBe(201);
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await server?.kill();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function startRun(workflow = 'slow-steps'): Promise<string> {
  const res = await api(server.url, 'POST', `${NS}/workflows/${workflow}/runs`, {}, TOKEN);
  expect(res.status).toBe(201);
  return res.body.metadata.name;
}

async function runPage(run: string) {
  const page: Page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const events: { url: URL; status?: number }[] = [];
  const gets: URL[] = [];
  page.on('response', (r) => {
    const url = new URL(r.url());
    if (url.pathname === `${NS}/runs/${run}/events`) events.push({ url, status: r.status() });
    if (url.pathname === `${NS}/runs/${run}`) gets.push(url);
  });
  await page.addInitScript((t) => sessionStorage.setItem('meson.token', t), TOKEN);
  await page.goto(`${server.url}/#/runs/${run}`);
  return { page, events, gets };
}

describe('web UI, streams that end or are refused', () => {
  it('reconnects when the server ends the stream, resuming from the last resourceVersion', async () => {
    const run = await startRun();
    const { page, events } = await runPage(run);
    await page.getByRole('button', { name: /^step two \(shell\): Running/ }).waitFor({ timeout: 30_000 });
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: /^step three \(noop\): Succeeded/ }).waitFor();
    // a run of ~6 s under streams of 2 s: several streams, each after the first resuming
    expect(events.length).toBeGreaterThanOrEqual(2);
    const versions = events.map((e) => Number(e.url.searchParams.get('resourceVersion')));
    expect(versions.every((v) => Number.isInteger(v) && v > 0)).toBe(true);
    expect([...versions].sort((a, b) => a - b)).toEqual(versions);
    await page.close();
  });

  it('stays current with plain reads while the server refuses the stream (429), then goes live', async () => {
    // take every stream the server allows, and take each again when the server ends it (its
    // 2 s bound), so no slot frees while the page loads on a slow machine
    const held = [0, 1].map(() => new AbortController());
    const hold = async (ctl: AbortController) => {
      const res = await fetch(`${server.url}${NS}/runs?watch=true`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        signal: ctl.signal,
      });
      expect(res.status).toBe(200);
      void (async () => {
        try {
          for await (const _ of res.body ?? []) {
            // drain until the server ends the stream
          }
          if (!ctl.signal.aborted) await hold(ctl);
        } catch {
          // aborted
        }
      })();
    };
    for (const ctl of held) await hold(ctl);
    const run = await startRun();
    const { page, events, gets } = await runPage(run);
    await page.getByText('reconnecting…').waitFor({ timeout: 10_000 });
    // the page still moves on, from the reads it makes while the stream is refused
    await page.getByRole('button', { name: /^step one \(shell\): Succeeded/ }).waitFor({ timeout: 30_000 });
    expect(events.some((e) => e.status === 429)).toBe(true);
    expect(gets.length).toBeGreaterThanOrEqual(2);
    await page.screenshot({ path: join(SHOTS, 'reconnecting.png') });
    for (const ctl of held) ctl.abort();
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 60_000 });
    expect(events.some((e) => e.status === 200)).toBe(true);
    // reads back off (1 s, doubling): a handful over the run, not one a second
    expect(gets.length).toBeLessThan(10);
    await page.close();
  });

  it('shows the log as it is when the server refuses to follow it', async () => {
    // one stream for this test, one for the run page: the log follow is refused (429)
    const ctl = new AbortController();
    const res = await fetch(`${server.url}${NS}/runs?watch=true`, {
      headers: { authorization: `Bearer ${TOKEN}` },
      signal: ctl.signal,
    });
    expect(res.status).toBe(200);
    const run = await startRun('talk-slowly');
    const { page } = await runPage(run);
    await page.getByRole('button', { name: /^step talk \(shell\): Running/ }).click({ timeout: 30_000 });
    const panel = page.getByRole('complementary', { name: 'Step talk' });
    await panel.getByText(/not followed \(too many open streams/).waitFor({ timeout: 10_000 });
    await panel.getByText('hello-from-talk').waitFor();
    ctl.abort();
    await page.close();
  });
});
