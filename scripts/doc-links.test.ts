// Product docs link only to files inside the repository, and every such link resolves: a
// link outside (../shared/...) works in one checkout and is dead everywhere else.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const docs = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

function relativeLinks(text: string): string[] {
  const withoutCode = text.replace(/```[\s\S]*?```/g, '').replace(/`[^`\n]*`/g, '');
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((href) => !/^[a-z][a-z0-9+.-]*:/i.test(href) && !href.startsWith('#'));
}

describe('documentation links', () => {
  for (const doc of docs) {
    it(`${doc} links only to existing files inside the repository`, () => {
      for (const href of relativeLinks(readFileSync(join(root, doc), 'utf8'))) {
        const target = resolve(dirname(join(root, doc)), decodeURI(href.split('#')[0]!));
        expect(relative(root, target).startsWith('..'), `${doc}: ${href} leaves the repository`).toBe(false);
        expect(existsSync(target), `${doc}: ${href} does not exist`).toBe(true);
      }
    });
  }
});
