import { describe, expect, it } from 'vitest';
import { cleanStepEnvironment, executorEnvironment, OBJECT_STORE_CLIENT_ENV } from './env.ts';

const server = {
  PATH: '/bin',
  MESON_API_TOKEN: 'server-token',
  AWS_ACCESS_KEY_ID: 'AKIA-test',
  AWS_SECRET_ACCESS_KEY: 'secret-key',
  AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000',
  MESON_S3_FORCE_PATH_STYLE: 'true',
};

describe('object store configuration', () => {
  it('reaches only the executor of a copy step', () => {
    const copy = executorEnvironment(server, [], { objectStore: true });
    expect(copy).toMatchObject({
      AWS_ACCESS_KEY_ID: 'AKIA-test',
      AWS_SECRET_ACCESS_KEY: 'secret-key',
      AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9000',
      MESON_S3_FORCE_PATH_STYLE: 'true',
    });
    expect(copy.MESON_API_TOKEN).toBeUndefined();
    const other = executorEnvironment(server, []);
    for (const name of OBJECT_STORE_CLIENT_ENV) expect(other[name], name).toBeUndefined();
  });

  it('never reaches a step process, whatever its kind, unless passed through by name', () => {
    for (const kind of ['shell', 'container', 'spark'] as const) {
      const env = cleanStepEnvironment(kind, server, { workDir: '/w', protocol: {} });
      for (const name of OBJECT_STORE_CLIENT_ENV) expect(env[name], `${kind} ${name}`).toBeUndefined();
    }
    expect(
      cleanStepEnvironment('shell', server, {
        workDir: '/w',
        passthrough: ['AWS_ENDPOINT_URL_S3'],
        protocol: {},
      }).AWS_ENDPOINT_URL_S3,
    ).toBe('http://127.0.0.1:9000');
  });
});
