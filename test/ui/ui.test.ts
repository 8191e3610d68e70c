// The web UI in a real headless Chromium against a real `mesonctl server` (with a token): a run
// from the start form to success, a failure restarted from failed, and what the page must not do
// with the token. Screenshots are saved under test/ui/__screenshots__.
// biome-ignore-all lint/suspicious/noThenProperty: `then` is the branch field of the workflow API
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';

type Document = { cookie: string };

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type ServerProcess, startServer } from '../standalone/server-process.ts';
import { launch, SHOTS } from './browser.ts';

const TOKEN = 'ui-test-token-0123456789';
let server: ServerProcess;
let browser: Browser;
let root = '';
let marker = '';

const workflow = (name: string, definition: unknown, parameters: unknown[] = []) => ({
  apiVersion: 'meson.dev/v1alpha1',
  kind: 'Workflow',
  metadata: { name },
  spec: { description: `UI test ${name}`, parameters, definition },
});

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'meson-ui-'));
  marker = join(root, 'fixed');
  server = await startServer({ cwd: root, dataDir: join(root, 'data'), env: { MESON_API_TOKEN: TOKEN } });
  const put = async (wf: ReturnType<typeof workflow>) => {
    const res = await api(server.url, 'POST', '/api/v1/namespaces/default/workflows', wf, TOKEN);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  };
  await put(
    workflow(
      'ui-hello',
      {
        sequence: [
          {
            step: {
              name: 'greet',
              shell: { script: 'echo "Hello, ${who}!"\necho "n=3" >> "$MESON_OUTPUTS"' },
            },
          },
          {
            parallel: [
              { step: { name: 'left', noop: {} } },
              {
                foreach: {
                  items: 'range(steps.greet.outputs.n)',
                  as: 'i',
                  do: { step: { name: 'each', noop: {} } },
                },
              },
            ],
          },
          {
            xor: [
              { when: 'who == "nobody"', then: { step: { name: 'never', noop: {} } } },
              { otherwise: { step: { name: 'done', noop: {} } } },
            ],
          },
        ],
      },
      [{ name: 'who', type: 'string', value: 'world' }],
    ),
  );
  await put(
    workflow('ui-flaky', {
      sequence: [
        { step: { name: 'prepare', noop: {} } },
        {
          step: {
            name: 'check',
            shell: { script: `test -f '${marker}' || { echo "missing ${marker}" >&2; exit 3; }` },
          },
        },
      ],
    }),
  );
  // what a run starter or a step may put in front of the UI, in every field the UI shows
  const html = (tag: string) => `<img src=x onerror="document.title='${tag}'">`;
  const hostile = workflow(
    'ui-hostile',
    {
      step: {
        name: 'talk',
        shell: {
          script: [
            'echo "${who}"',
            'echo "${who}" >&2',
            `printf 'said=%s\\n' "\${who}" >> "$MESON_OUTPUTS"`,
          ].join('\n'),
        },
      },
    },
    [{ name: 'who', type: 'string', value: html('pwned-param') }],
  );
  await put({ ...hostile, spec: { ...hostile.spec, description: html('pwned-description') } });
  await put(
    workflow('ui-slow', {
      sequence: [
        { step: { name: 'sleepy', shell: { script: 'sleep 60' } } },
        { step: { name: 'after', noop: {} } },
      ],
    }),
  );
  browser = await launch();
});

afterAll(async () => {
  await browser?.close();
  await server?.kill();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function signedIn(viewport = { width: 1280, height: 800 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  await page.goto(server.url);
  await page.getByLabel('API token').fill(TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Workflows' }).waitFor();
  return page;
}

describe('web UI', () => {
  it('starts a run from the workflow page and follows it to success', async () => {
    const page = await signedIn();
    await page.getByLabel('Search').fill('hello');
    await expect(page.getByRole('link', { name: 'ui-flaky' }).count()).resolves.toBe(0);
    await page.screenshot({ path: join(SHOTS, 'workflows.png') });
    await page.getByRole('link', { name: 'ui-hello' }).click();
    await page.getByRole('heading', { name: 'Workflow ui-hello' }).waitFor();
    await page.getByLabel(/^who/).fill('browser');
    await page.screenshot({ path: join(SHOTS, 'workflow.png') });
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.getByRole('heading', { name: /^Run ui-hello-/ }).waitFor();
    // live states: the page updates by itself until the run ends
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 60_000 });
    const greet = page.getByRole('button', { name: /^step greet \(shell\): Succeeded/ });
    await greet.waitFor();
    // the foreach body is drawn once, with the count of its instances
    await page.getByRole('button', { name: /^step each \(noop\): Succeeded, 3 Succeeded/ }).waitFor();
    // the xor branch that did not hold never ran
    await page.getByRole('button', { name: /^step never \(noop\): (not started|Skipped)/ }).waitFor();
    expect(await page.getByText('when who == "nobody"').count()).toBe(1);
    // keyboard: focus the step and open its panel with Enter
    await greet.focus();
    await page.keyboard.press('Enter');
    const panel = page.getByRole('complementary', { name: 'Step greet' });
    await panel.getByText('Hello, browser!').waitFor();
    await expect(panel.getByText('"n": 3').count()).resolves.toBe(1);
    await page.screenshot({ path: join(SHOTS, 'run-succeeded.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.screenshot({ path: join(SHOTS, 'run-succeeded-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
    // the runs table lists it, filtered by phase
    await page.getByRole('link', { name: 'Runs' }).click();
    await page.getByLabel('Phase').selectOption('Succeeded');
    await page
      .getByRole('cell', { name: /^ui-hello-/ })
      .first()
      .waitFor();
    expect(page.url()).toContain('phase=Succeeded');
    expect(page.url()).not.toContain(TOKEN);
    await page.screenshot({ path: join(SHOTS, 'runs.png') });
    await page.close();
  });

  it('shows a failed run and restarts it from failed', async () => {
    const page = await signedIn();
    await page.getByRole('link', { name: 'ui-flaky' }).click();
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.getByRole('heading', { name: /Failed/ }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: /^step check \(shell\): Failed/ }).click();
    const panel = page.getByRole('complementary', { name: 'Step check' });
    await panel.getByText(`missing ${marker}`).waitFor();
    await page.screenshot({ path: join(SHOTS, 'run-failed.png'), fullPage: true });
    const failedUrl = page.url();
    // fix what the step needs, then restart: only the failed step runs again
    writeFileSync(marker, 'ok');
    await page.getByRole('button', { name: 'Restart from failed' }).click();
    await page.waitForURL((u) => u.toString() !== failedUrl);
    await page.getByText('Restart of').waitFor();
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: /^step check \(shell\): Succeeded/ }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'run-restarted.png'), fullPage: true });
    // readable on a phone
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('button', { name: /^step check/ }).click();
    await page.getByRole('complementary', { name: 'Step check' }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'run-phone.png'), fullPage: true });
    await page.close();
  });

  it('stops a running run', async () => {
    const page = await signedIn();
    await page.getByRole('link', { name: 'ui-slow' }).click();
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.getByRole('button', { name: /^step sleepy \(shell\): Running/ }).waitFor({ timeout: 60_000 });
    await page.screenshot({ path: join(SHOTS, 'run-running.png') });
    await page.getByRole('button', { name: 'Stop', exact: true }).click();
    await page.getByRole('heading', { name: /Stopped/ }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: /^step after \(noop\): not started/ }).waitFor();
    await page.getByRole('button', { name: 'Restart from failed' }).waitFor();
    await page.close();
  });

  it('shows what runs and steps say as text, never as markup', async () => {
    const page = await signedIn();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.getByText(`<img src=x onerror="document.title='pwned-description'">`).waitFor();
    await page.getByRole('link', { name: 'ui-hostile' }).click();
    await expect(page.getByLabel(/^who/).inputValue()).resolves.toContain('pwned-param');
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.getByRole('heading', { name: /Succeeded/ }).waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: /^step talk/ }).click();
    const panel = page.getByRole('complementary', { name: 'Step talk' });
    // stdout, stderr and the output: the text as written
    const said = panel.getByText(`<img src=x onerror="document.title='pwned-param'">`);
    await said.nth(1).waitFor();
    expect(await said.count()).toBe(2);
    await panel.getByText(/"said": "<img src=x onerror=/).waitFor();
    await page.getByText(/"who": "<img src=x onerror=/).waitFor();
    await page.screenshot({ path: join(SHOTS, 'run-hostile.png'), fullPage: true });
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.title()).toBe('Meson');
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it('keeps the data behind the token: login form, refused token, no token in URLs', async () => {
    const page = await browser.newPage();
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    const res = await page.goto(server.url);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toMatch(/script-src 'self' 'sha256-/);
    await page.getByLabel('API token').fill('wrong-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token was refused.').waitFor();
    // the API itself refuses without the token; only the page and its files are public
    expect((await api(server.url, 'GET', '/api/v1/namespaces/default/runs')).status).toBe(401);
    expect((await fetch(`${server.url}/ui/app.js`)).status).toBe(200);
    expect((await fetch(`${server.url}/ui/../package.json`)).status).toBe(401);
    expect((await fetch(`${server.url}/ui/%2e%2e/package.json`)).status).toBe(401);
    await page.getByLabel('API token').fill(TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Workflows' }).waitFor();
    expect(requests.filter((u) => u.includes(TOKEN) || u.includes('wrong-token'))).toEqual([]);
    // kept for this tab only
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { document: Document }).document.cookie)).toBe(
      '',
    );
    await page.close();
  });
});
