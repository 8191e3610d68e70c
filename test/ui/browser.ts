// Headless Chromium (Debian's package) for the UI tests, driven by playwright-core.
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

export const CHROMIUM = process.env.MESON_CHROMIUM ?? '/usr/bin/chromium';
/** Screenshots land here (gitignored); look at them after a run. */
export const SHOTS = fileURLToPath(new URL('./__screenshots__/', import.meta.url));

export async function launch(): Promise<Browser> {
  mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
