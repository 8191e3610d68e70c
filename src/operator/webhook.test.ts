import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AdmissionLookup } from './admission.ts';
import { buildWebhookApp, WEBHOOK_PATH } from './webhook.ts';

const lookup: AdmissionLookup = { getWorkflow: async () => undefined, listVersions: async () => [] };

const apps: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

async function app(options: { bodyLimit?: number; requestTimeoutMs?: number } = {}) {
  const a = await buildWebhookApp({ lookup, ...options });
  apps.push(a);
  return a;
}

const review = (object: unknown) => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: {
    uid: '705ab4f5-6393-11e8-b7cc-42010a800002',
    kind: { group: 'meson.dev', version: 'v1alpha1', kind: 'Workflow' },
    resource: { group: 'meson.dev', version: 'v1alpha1', resource: 'workflows' },
    operation: 'CREATE',
    namespace: 'team',
    name: 'hello',
    object,
    userInfo: { username: 'someone' },
  },
});

const hello = {
  apiVersion: 'meson.dev/v1alpha1',
  kind: 'Workflow',
  metadata: { name: 'hello', namespace: 'team' },
  spec: { definition: { step: { name: 'greet', shell: { script: 'echo hi' } } } },
};

describe('webhook server', () => {
  it('answers an AdmissionReview with an AdmissionReview carrying the request uid', async () => {
    const a = await app();
    const res = await a.inject({ method: 'POST', url: WEBHOOK_PATH, payload: review(hello) });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      response: { uid: '705ab4f5-6393-11e8-b7cc-42010a800002', allowed: true },
    });
    const bad = await a.inject({
      method: 'POST',
      url: WEBHOOK_PATH,
      payload: review({ ...hello, spec: { definition: { step: { name: 'greet' } } } }),
    });
    expect(bad.json().response).toMatchObject({ allowed: false, status: { code: 422, reason: 'Invalid' } });
    expect(bad.json().response.status.message).toMatch(/^spec\.definition\.step/);
  });

  it('checks only the namespaces it serves (--namespace) and allows the rest unchecked', async () => {
    const a = await buildWebhookApp({ lookup, namespaces: ['team'] });
    apps.push(a);
    const broken = { ...hello, spec: { definition: { step: { name: 'greet' } } } };
    const inTeam = await a.inject({ method: 'POST', url: WEBHOOK_PATH, payload: review(broken) });
    expect(inTeam.json().response.allowed).toBe(false);
    const other = review(broken);
    other.request.namespace = 'elsewhere';
    const elsewhere = await a.inject({ method: 'POST', url: WEBHOOK_PATH, payload: other });
    expect(elsewhere.json().response).toEqual({ uid: other.request.uid, allowed: true });
  });

  it('refuses with 400 what is not an AdmissionReview: garbage, wrong fields, another version', async () => {
    const a = await app();
    const bodies: [string, string][] = [
      ['{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionRev', 'application/json'],
      ['not json at all', 'application/json'],
      ['null', 'application/json'],
      ['[]', 'application/json'],
      [JSON.stringify({ ...review(hello), apiVersion: 'admission.k8s.io/v1beta1' }), 'application/json'],
      [JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' }), 'application/json'],
      [
        JSON.stringify({ ...review(hello), request: { ...review(hello).request, uid: 7 } }),
        'application/json',
      ],
      [
        JSON.stringify({ ...review(hello), request: { ...review(hello).request, operation: 'EXPLODE' } }),
        'application/json',
      ],
      [
        JSON.stringify({ ...review(hello), request: { ...review(hello).request, kind: 'Workflow' } }),
        'application/json',
      ],
      [
        '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"__proto__":{"allowed":true}}}',
        'application/json',
      ],
      ['\u0000\u0001\u0002\uFFFD', 'application/json'],
    ];
    for (const [payload, type] of bodies) {
      const res = await a.inject({
        method: 'POST',
        url: WEBHOOK_PATH,
        payload,
        headers: { 'content-type': type },
      });
      expect(res.statusCode, payload.slice(0, 80)).toBe(400);
      expect(res.json()).toHaveProperty('message');
    }
    const yaml = await a.inject({
      method: 'POST',
      url: WEBHOOK_PATH,
      payload: 'apiVersion: x',
      headers: { 'content-type': 'application/yaml' },
    });
    expect(yaml.statusCode).toBe(415);
    const text = await a.inject({
      method: 'POST',
      url: WEBHOOK_PATH,
      payload: 'x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.statusCode).toBe(415);
    expect((await a.inject({ method: 'GET', url: WEBHOOK_PATH })).statusCode).toBe(404);
  });

  it('refuses bodies over the limit with 413 before parsing them', async () => {
    const a = await app({ bodyLimit: 64 * 1024 });
    const big = review({
      ...hello,
      metadata: { ...hello.metadata, annotations: { a: 'x'.repeat(100_000) } },
    });
    const res = await a.inject({ method: 'POST', url: WEBHOOK_PATH, payload: big });
    expect(res.statusCode).toBe(413);
    // a lying content-length is refused too
    const lying = await a.inject({
      method: 'POST',
      url: WEBHOOK_PATH,
      payload: JSON.stringify(review(hello)),
      headers: { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) },
    });
    expect(lying.statusCode).toBeGreaterThanOrEqual(400);
    expect(lying.statusCode).toBeLessThan(500);
  });

  it('answers a deeply nested object under the limit with a refusal, quickly', async () => {
    const a = await app();
    let deep = '{"step":{"name":"x","noop":{}}}';
    for (let i = 0; i < 100_000; i++) deep = `{"sequence":[${deep}]}`;
    const payload = JSON.stringify(review({ ...hello, spec: { definition: '@@' } })).replace('"@@"', deep);
    expect(payload.length).toBeLessThan(8 * 1024 * 1024);
    const started = Date.now();
    const res = await a.inject({
      method: 'POST',
      url: WEBHOOK_PATH,
      payload,
      headers: { 'content-type': 'application/json' },
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    // JSON.parse takes it; the validator's nesting bound refuses it
    expect(res.statusCode).toBe(200);
    expect(res.json().response.status.message).toMatch(/levels of nesting/);
  });

  it('drops a client that sends its body too slowly (slowloris) after the request timeout', async () => {
    const a = await app({ requestTimeoutMs: 500 });
    await a.listen({ port: 0, host: '127.0.0.1' });
    const { port } = a.server.address() as { port: number };
    const socket = connect(port, '127.0.0.1');
    socket.write(
      `POST ${WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`,
    );
    const started = Date.now();
    const closed = await new Promise<string>((resolve) => {
      let data = '';
      socket.on('data', (d) => {
        data += d.toString();
      });
      socket.on('close', () => resolve(data));
      const drip = setInterval(() => socket.writable && socket.write(' '), 100);
      socket.on('close', () => clearInterval(drip));
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(closed).toMatch(/^HTTP\/1\.1 408|^$/);
  });
});
