import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseStepOptions } from './step-options.ts';

describe('step options', () => {
  it('combines the environment variables and the flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meson-opts-'));
    try {
      const opts = parseStepOptions(
        { 'step-env-passthrough': ['AWS_PROFILE'], 'copy-root': ['.'], 'step-limit': ['links=5'] },
        {
          MESON_STEP_ENV_PASSTHROUGH: 'HTTP_PROXY, NO_PROXY',
          MESON_COPY_ROOTS: dir,
          MESON_STEP_LIMITS: 'outputKeys=10',
        },
        dir,
      );
      expect(opts).toEqual({
        envPassthrough: ['HTTP_PROXY', 'NO_PROXY', 'AWS_PROFILE'],
        copyRoots: [dir, join(dir, '.')],
        stepLimits: { outputKeys: 10, links: 5 },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('refuses bad names, MESON_ variables, missing roots and bad limits, naming the flag', () => {
    expect(() => parseStepOptions({ 'step-env-passthrough': ['A-B'] }, {}, '/')).toThrow(
      /--step-env-passthrough: "A-B" is not a variable name/,
    );
    expect(() => parseStepOptions({ 'step-env-passthrough': ['MESON_API_TOKEN'] }, {}, '/')).toThrow(
      /MESON_\* variables/,
    );
    expect(() => parseStepOptions({ 'copy-root': ['/no/such/dir'] }, {}, '/')).toThrow(
      /--copy-root \/no\/such\/dir: expected an existing directory/,
    );
    expect(() => parseStepOptions({ 'step-limit': ['outputsBytes=0'] }, {}, '/')).toThrow(/--step-limit: /);
  });
});
