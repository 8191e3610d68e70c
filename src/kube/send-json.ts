// A write to the API server without client-node's typed models. The generated clients walk
// every field of a V1Pod through ObjectSerializer twice per create (serialize the request
// against the model, then parse and deserialize the whole Pod the server answers with), and
// the launcher throws the answer away. In a 2,000-step run that was about a millisecond of the
// operator's CPU per Pod. `sendJson` sends `JSON.stringify(body)` and reads the answer as
// text, through the same KubeConfig: its authentication, its connection pool and, for a
// RateLimitedKubeConfig, its token bucket and Retry-After handling.
import {
  ApiException,
  createConfiguration,
  type HttpLibrary,
  HttpMethod,
  type KubeConfig,
  RequestContext,
  ServerConfiguration,
} from '@kubernetes/client-node';

/** A KubeConfig that names the HTTP library and User-Agent its API clients use (RateLimitedKubeConfig). */
export interface HttpLibrarySource {
  httpLibrary(): { library: HttpLibrary; userAgent?: string };
}

function hasHttpLibrary(kc: KubeConfig): kc is KubeConfig & HttpLibrarySource {
  return typeof (kc as Partial<HttpLibrarySource>).httpLibrary === 'function';
}

const plainLibraries = new WeakMap<KubeConfig, HttpLibrary>();

/** The library a plain `makeApiClient` of `kc` would use. */
function plainLibrary(kc: KubeConfig, server: string): HttpLibrary {
  let lib = plainLibraries.get(kc);
  if (!lib) {
    lib = createConfiguration({ baseServer: new ServerConfiguration(server, {}) }).httpApi;
    plainLibraries.set(kc, lib);
  }
  return lib;
}

/**
 * Sends `body` as JSON to `path` (e.g. /api/v1/namespaces/ns/pods) of `kc`'s current cluster.
 * Resolves with the status code and the answer's text (not parsed); rejects with client-node's
 * ApiException (`code`, `body` the answer's text) on a status outside 2xx, as the generated
 * clients do.
 */
export async function sendJson(
  kc: KubeConfig,
  method: 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  path: string,
  body: unknown,
): Promise<{ code: number; text: string }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('No active cluster!');
  const ctx = new RequestContext(`${cluster.server}${path}`, HttpMethod[method]);
  ctx.setHeaderParam('Content-Type', 'application/json');
  ctx.setHeaderParam('Accept', 'application/json');
  if (body !== undefined) ctx.setBody(JSON.stringify(body));
  await kc.applySecurityAuthentication(ctx);
  let library: HttpLibrary;
  if (hasHttpLibrary(kc)) {
    const own = kc.httpLibrary();
    library = own.library;
    if (own.userAgent) ctx.setHeaderParam('User-Agent', own.userAgent);
  } else library = plainLibrary(kc, cluster.server);
  const res = await library.send(ctx).toPromise();
  const text = await res.body.text();
  if (res.httpStatusCode < 200 || res.httpStatusCode > 299)
    throw new ApiException(res.httpStatusCode, `${method} ${path}`, text, res.headers);
  return { code: res.httpStatusCode, text };
}
