// client-node's HTTP library on undici's `request` instead of its `fetch`. client-node sends
// every API call through undici's fetch, which builds a WHATWG Request, Headers, Response and a
// web ReadableStream per call and reads the answer through them: in the 10,000-Pod benchmark
// that machinery was about a quarter of the operator's CPU until every Pod was bound (4.5 of
// 16.8 s). `request` sends on the same dispatcher (the KubeConfig's connection pool, its TLS
// settings, HTTP/2 when the server offers it) and hands back a plain stream.
//
// The answer is read whole before the ResponseContext is made: client-node reads every answer
// whole anyway (text() or binary()), and a body that nobody reads would hold its HTTP/2 stream.
// Watches and logs do not come here: client-node's Watch and Log call fetch themselves.
import {
  type HttpLibrary,
  type RequestContext,
  ResponseContext,
  SelfDecodingBody,
  wrapHttpLibrary,
} from '@kubernetes/client-node';
import { type Dispatcher, request } from 'undici';

/** The body as text: the Kubernetes API clients send JSON (or a query-string form) only. */
function bodyOf(ctx: RequestContext): string | undefined {
  const body = ctx.getBody();
  if (body === undefined || typeof body === 'string') return body;
  if (body instanceof URLSearchParams) return body.toString();
  throw new Error(`undiciHttpLibrary: a multipart body is not supported (${ctx.getUrl()})`);
}

/** Sends one request with undici's `request`; resolves with the status, headers and whole body. */
export async function sendWithUndici(ctx: RequestContext): Promise<ResponseContext> {
  const res = await request(ctx.getUrl(), {
    method: ctx.getHttpMethod().toString() as Dispatcher.HttpMethod,
    headers: ctx.getHeaders(),
    body: bodyOf(ctx),
    signal: ctx.getSignal() ?? null,
    // client-node's Agent for this cluster (KubeConfig.applySecurityAuthentication sets it)
    dispatcher: ctx.getDispatcher() as Dispatcher | undefined,
  });
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  const data = Buffer.from(await res.body.arrayBuffer());
  return new ResponseContext(res.statusCode, headers, new SelfDecodingBody(Promise.resolve(data)));
}

/** An HttpLibrary for client-node's API clients (makeApiClient's `httpApi`) on undici's request. */
export function undiciHttpLibrary(): HttpLibrary {
  return wrapHttpLibrary({ send: sendWithUndici });
}
