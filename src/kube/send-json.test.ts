import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { answerJson, useApiServer } from '../../test/support/api-server.ts';
import { errorText, statusCode } from '../launchers/kubernetes.ts';
import { sendJson } from './send-json.ts';

const startServer = useApiServer();
/** An API server answering every request with `code` and `answer`. */
const serve = (code: number, answer: object) => startServer((_req, res) => answerJson(res, code, answer));

describe('sendJson', () => {
  it('sends the body as JSON with the config’s credentials and returns the answer unparsed', async () => {
    const { kc, seen } = await serve(201, { kind: 'Pod', metadata: { name: 'p' } });
    const pod = {
      metadata: { name: 'p', labels: { 'meson.dev/run': 'r' }, annotations: { a: 'ü "quoted" \n' } },
      spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '100m' } } }] },
    };
    const out = await sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', pod);
    expect(out).toEqual({ code: 201, text: JSON.stringify({ kind: 'Pod', metadata: { name: 'p' } }) });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: 'POST',
      url: '/api/v1/namespaces/ns/pods',
      type: 'application/json',
      auth: 'Bearer tok',
    });
    expect(JSON.parse(seen[0]!.body)).toEqual(pod);
  });

  it('rejects a refusal as client-node does: ApiException with the code and the server’s message', async () => {
    const { kc } = await serve(409, {
      kind: 'Status',
      code: 409,
      reason: 'AlreadyExists',
      message: 'pods "p" already exists',
    });
    const err = await sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    expect(statusCode(err)).toBe(409);
    expect(errorText(err)).toBe('pods "p" already exists');
  });

  it('rejects when nothing answers (no code: the launcher retries it as transient)', async () => {
    const { kc, close } = await serve(200, {});
    await close();
    const err = await sendJson(kc, 'POST', '/api/v1/namespaces/ns/pods', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(statusCode(err)).toBeUndefined();
  });
});
