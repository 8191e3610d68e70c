import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { apiErrorMessage, loadKubeConfig, retrying } from './kube.ts';

const apiError = (code: number, message: string) =>
  new ApiException(code, 'long client-node text', JSON.stringify({ kind: 'Status', message }), {});

describe('retrying', () => {
  it('retries 429 and 5xx until an answer, within the time given', async () => {
    const answers = [apiError(429, 'storage is (re)initializing'), apiError(503, 'unavailable'), 'ok'];
    let calls = 0;
    const value = await retrying(
      async () => {
        const a = answers[calls++];
        if (a instanceof Error) throw a;
        return a;
      },
      5_000,
      'get Workflow',
    );
    expect([value, calls]).toEqual(['ok', 3]);
  });

  it('does not retry other errors, and names the call with a short message', async () => {
    let calls = 0;
    const err = await retrying(
      async () => {
        calls++;
        throw apiError(403, 'workflows is forbidden');
      },
      5_000,
      'get Workflow',
    ).catch((e: Error) => e);
    expect(calls).toBe(1);
    expect((err as Error).message).toBe('get Workflow: HTTP 403: workflows is forbidden');
    expect((err as Error).cause).toBeInstanceOf(ApiException);
  });

  it('gives up at the deadline on a hanging or always-busy API server', async () => {
    const started = Date.now();
    const hang = await retrying(() => new Promise(() => {}), 300, 'list').catch((e: Error) => e.message);
    expect(hang).toBe('list: no answer from the API server in 300 ms');
    const busy = await retrying(
      async () => {
        throw apiError(429, 'busy');
      },
      500,
      'list',
    ).catch((e: Error) => e.message);
    expect(busy).toBe('list: HTTP 429: busy');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('shortens API errors whose body is not JSON', () => {
    expect(apiErrorMessage(new ApiException(500, 'x', '<html>oops</html>', {}))).toBe(
      'HTTP 500: <html>oops</html>',
    );
    expect(apiErrorMessage(new Error('plain'))).toBe('plain');
  });
});

describe('loadKubeConfig', () => {
  it('prefers --kubeconfig, then KUBECONFIG, then the in-cluster account, and says why it cannot', () => {
    expect(() => loadKubeConfig(undefined, {})).toThrow(/not running in a cluster/);
    expect(() => loadKubeConfig('/nonexistent', { KUBECONFIG: '/other' })).toThrow(/from \/nonexistent/);
    expect(() => loadKubeConfig(undefined, { KUBECONFIG: '/other:/more' })).toThrow(/from \/other:\/more/);
  });
});
