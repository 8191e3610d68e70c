// The operator's API clients on undici's request (RateLimitedKubeConfig's HTTP library) against
// a local HTTP server: what the generated clients and sendJson send and read back is what they
// did through client-node's fetch.
import { ApiException, CoreV1Api, HttpMethod, RequestContext } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { type Answer, answerJson as json, useApiServer } from '../../test/support/api-server.ts';
import { errorText, statusCode } from '../launchers/kubernetes.ts';
import { RateLimitedKubeConfig, USER_AGENT } from '../operator/rate-limit.ts';
import { sendJson } from './send-json.ts';
import { sendWithUndici } from './undici-http-library.ts';

const startServer = useApiServer();

/** A server answering as `answer` says, and the operator's (rate-limited) config for it. */
async function serve(answer: Answer) {
  const api = await startServer(answer);
  return { ...api, kc: new RateLimitedKubeConfig(api.kc, { qps: 0, burst: 1 }) };
}

describe('the operator’s API clients on undici’s request', () => {
  it('a generated client sends its body with the credentials and User-Agent, and reads the typed answer', async () => {
    const { kc, seen } = await serve((_req, res) =>
      json(res, 201, { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'p', namespace: 'ns', uid: 'u-1' } }),
    );
    const core = kc.makeApiClient(CoreV1Api);
    const pod = await core.createNamespacedPod({
      namespace: 'ns',
      body: { metadata: { name: 'p', annotations: { a: 'ü "quoted" \n' } }, spec: { containers: [] } },
    });
    expect(pod.metadata).toMatchObject({ name: 'p', namespace: 'ns', uid: 'u-1' });
    expect(seen[0]).toMatchObject({
      method: 'POST',
      url: '/api/v1/namespaces/ns/pods',
      type: 'application/json',
      auth: 'Bearer tok',
      agent: USER_AGENT,
    });
    expect(JSON.parse(seen[0]!.body).metadata.annotations).toEqual({ a: 'ü "quoted" \n' });
  });

  it('a refusal is client-node’s ApiException with the code and the server’s message', async () => {
    const { kc } = await serve((_req, res) =>
      json(res, 409, {
        kind: 'Status',
        code: 409,
        reason: 'AlreadyExists',
        message: 'pods "p" already exists',
      }),
    );
    for (const attempt of [
      () =>
        kc
          .makeApiClient(CoreV1Api)
          .createNamespacedPod({ namespace: 'ns', body: { metadata: { name: 'p' } } }),
      () => sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', {}),
    ]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiException);
      expect(statusCode(err)).toBe(409);
      expect(errorText(err)).toBe('pods "p" already exists');
    }
  });

  it('a 429 with Retry-After is retried on the same connection pool, its body read and dropped', async () => {
    const { kc, seen } = await serve((_req, res, n) =>
      n <= 2
        ? json(res, 429, { kind: 'Status', code: 429, message: 'too many requests' }, { 'retry-after': '0' })
        : json(res, 200, { kind: 'Pod', metadata: { name: 'p' } }),
    );
    const out = await sendJson(kc, 'PUT', '/api/v1/namespaces/ns/pods/p', { metadata: { name: 'p' } });
    expect(out).toEqual({ code: 200, text: JSON.stringify({ kind: 'Pod', metadata: { name: 'p' } }) });
    expect(seen.map((s) => s.method)).toEqual(['PUT', 'PUT', 'PUT']);
    expect(seen.every((s) => s.body === JSON.stringify({ metadata: { name: 'p' } }))).toBe(true);
  });

  it('an answer’s headers reach the client (names in lower case, repeated ones joined)', async () => {
    const { url } = await serve((_req, res) => {
      res.setHeader('Warning', ['299 - "one"', '299 - "two"']);
      res.setHeader('Retry-After', '3');
      res.writeHead(204);
      res.end();
    });
    const res = await sendWithUndici(new RequestContext(`${url}/x`, HttpMethod.GET));
    expect(res.httpStatusCode).toBe(204);
    expect(res.headers['retry-after']).toBe('3');
    expect(res.headers.warning).toBe('299 - "one", 299 - "two"');
    expect(await res.body.text()).toBe('');
  });

  it('rejects without a code when nothing answers (the launcher retries it as transient)', async () => {
    const { kc, close } = await serve((_req, res) => json(res, 200, {}));
    await close();
    const err = await sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(statusCode(err)).toBeUndefined();
  });
});
