// Spark steps on Kubernetes (the operator's Pod launcher): spark-submit in client mode, the step
// Pod as the driver. The operator owns the settings that decide which cluster, namespace and
// identity the job uses and who owns its executors; a step's `conf` and `args` may not set them.
// Pure: shared by admission (src/crds/semantic.ts), the Pod launcher (src/launchers/
// kubernetes-pod.ts) and the executor program in the Pod (executors/executor.ts), which all
// check again. See docs/executor-protocol.md, "Spark steps on Kubernetes".
import type { ExecutorStep } from './protocol.ts';

/** The port of the driver's web UI (Spark's default spark.ui.port). */
export const SPARK_UI_PORT = 4040;

/** The downward-API variable that holds the step Pod's IP (spark.driver.host). */
export const POD_IP_ENV = 'MESON_POD_IP';

/** Where Kubernetes mounts a Pod's service account token and CA. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * What the launcher tells the executor about spark-submit (TaskFile.sparkSubmit): the cluster is
 * the one the Pod runs in (`k8s://https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`),
 * `--deploy-mode client`, spark.driver.host from POD_IP_ENV; `conf` comes after the step's own
 * (the operator's settings), `defaults` before it (a step may override them).
 */
export interface SparkSubmitSettings {
  conf: Record<string, string>;
  defaults?: Record<string, string>;
}

/** Options and conf keys only the operator sets (compared trimmed and lowercased). */
export const OWNED_OPTIONS = ['--master', '--deploy-mode', '--properties-file', '--proxy-user'] as const;
export const OWNED_CONF_KEYS = [
  'spark.master',
  'spark.submit.deploymode',
  'spark.kubernetes.namespace',
  'spark.kubernetes.driver.pod.name',
  'spark.driver.host',
  'spark.driver.bindaddress',
  // cluster mode's settings: with them the driver would talk to another API server, or to this
  // one without checking its certificate, with the Pod's token
  'spark.kubernetes.submitindriver',
  'spark.kubernetes.driver.master',
  'spark.kubernetes.trust.certificates',
] as const;
/** Every key under these prefixes: credentials and service accounts. */
export const OWNED_CONF_PREFIXES = ['spark.kubernetes.authenticate.'] as const;
/** Owned too when the operator fixes the executors' image (--spark-executor-image). */
export const IMAGE_CONF_KEYS = [
  'spark.kubernetes.container.image',
  'spark.kubernetes.executor.container.image',
  'spark.kubernetes.driver.container.image',
] as const;

export interface SparkOwnership {
  /** The operator fixed the image of Spark's executors: the image keys are owned too. */
  fixedImage?: boolean;
}

/** What the launcher's settings own (the image keys, when it fixed the executors' image). */
export function sparkOwnershipOf(settings: SparkSubmitSettings): SparkOwnership {
  return { fixedImage: Object.hasOwn(settings.conf, 'spark.kubernetes.container.image') };
}

/** The key a `--conf KEY=VALUE` argument sets: what precedes the first `=`, trimmed, lowercased. */
function confKeyOf(text: string): string {
  const i = text.indexOf('=');
  return (i < 0 ? text : text.slice(0, i)).trim().toLowerCase();
}

/** Whether the operator owns conf `key` (any case, surrounding white space, text after `=`). */
export function ownedConfKey(key: string, ownership: SparkOwnership = {}): boolean {
  const k = confKeyOf(key);
  return (
    (OWNED_CONF_KEYS as readonly string[]).includes(k) ||
    OWNED_CONF_PREFIXES.some((p) => k.startsWith(p)) ||
    (ownership.fixedImage === true && (IMAGE_CONF_KEYS as readonly string[]).includes(k))
  );
}

/** Whether an argument names an owned option (`--master`, `--master=...`, any case). */
function ownedOption(arg: string): string | undefined {
  const a = arg.trim().toLowerCase();
  return OWNED_OPTIONS.find((o) => a === o || a.startsWith(`${o}=`));
}

/** The conf text of `--conf=K=V`, `-cK=V` (spark-submit's short form), else the argument itself. */
function confText(arg: string): string {
  const a = arg.trimStart();
  const lower = a.toLowerCase();
  if (lower.startsWith('--conf=')) return a.slice('--conf='.length);
  if (lower.startsWith('-c') && !lower.startsWith('--')) return a.slice(2);
  return a;
}

const OWNERSHIP_NOTE = 'the operator sets it for every Spark step on Kubernetes (docs/executor-protocol.md)';

/**
 * Why the step's Spark block sets what the operator owns, or undefined: a `conf` key that is
 * owned (in any case, with white space, or hidden after `=`), or an argument that names an owned
 * option or conf key (`--master`, `--conf spark.master=…`, `--conf=spark.kubernetes.namespace=…`,
 * `spark.kubernetes.authenticate.…=…`). Application arguments follow the application, so
 * spark-submit does not read them; they are refused anyway, as a program that hands its
 * arguments on to spark-submit or SparkConf would.
 */
export function sparkOwnershipProblem(
  spark: ExecutorStep['spark'] | undefined,
  ownership: SparkOwnership = {},
): { field: string; segments: (string | number)[]; message: string } | undefined {
  if (!spark) return undefined;
  for (const key of Object.keys(spark.conf ?? {}))
    if (ownedConfKey(key, ownership))
      return {
        field: `spark.conf[${JSON.stringify(key)}]`,
        segments: ['spark', 'conf', key],
        message: `${JSON.stringify(key)} cannot be set by a step: ${OWNERSHIP_NOTE}`,
      };
  for (const [i, arg] of (spark.args ?? []).entries()) {
    if (typeof arg !== 'string') continue;
    const option = ownedOption(arg);
    const text = confText(arg);
    if (option || (text.includes('=') && ownedConfKey(text, ownership)))
      return {
        field: `spark.args[${i}]`,
        segments: ['spark', 'args', i],
        message: `${JSON.stringify(arg.length > 80 ? `${arg.slice(0, 80)}…` : arg)} sets ${option ?? confKeyOf(text)}, which a step cannot set: ${OWNERSHIP_NOTE}`,
      };
  }
  return undefined;
}

/** `k8s://https://HOST:PORT` of the cluster a Pod runs in (an IPv6 host in brackets), or undefined. */
export function inClusterMaster(env: NodeJS.ProcessEnv): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port || !/^[0-9]{1,5}$/.test(port) || !/^[A-Za-z0-9.:-]+$/.test(host)) return undefined;
  return `k8s://https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * The settings the operator owns for a spark step Pod: client mode in the Pod's namespace, the
 * Pod as the driver (so executors are owned by it and go with it), the service account's token
 * for requesting executors, the executors' image.
 */
export function ownedSparkConf(opts: {
  namespace: string;
  pod: string;
  executorImage: string;
  fixedImage: boolean;
}): SparkSubmitSettings {
  const image = { 'spark.kubernetes.container.image': opts.executorImage };
  return {
    conf: {
      'spark.kubernetes.namespace': opts.namespace,
      'spark.kubernetes.driver.pod.name': opts.pod,
      'spark.kubernetes.authenticate.caCertFile': `${SERVICE_ACCOUNT_DIR}/ca.crt`,
      'spark.kubernetes.authenticate.oauthTokenFile': `${SERVICE_ACCOUNT_DIR}/token`,
      // explicit, so that no -Dspark.… in spark.driver.extraJavaOptions sets them (--conf wins)
      'spark.kubernetes.submitInDriver': 'false',
      'spark.kubernetes.trust.certificates': 'false',
      ...(opts.fixedImage ? image : {}),
    },
    ...(opts.fixedImage ? {} : { defaults: image }),
  };
}

/**
 * The spark-submit options that come from the operator, as `before` (defaults, then the step's
 * options follow) and `after` (owned settings, after the step's conf: the last one of a key wins).
 * @throws Error naming what is missing when the executor does not run in a Pod.
 */
export function ownedSubmitArgs(
  settings: SparkSubmitSettings,
  env: NodeJS.ProcessEnv,
): { before: string[]; after: string[] } {
  const master = inClusterMaster(env);
  if (!master)
    throw new Error(
      'KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: Spark steps on Kubernetes run in a Pod',
    );
  const ip = env[POD_IP_ENV];
  if (!ip) throw new Error(`${POD_IP_ENV} (the Pod's IP, for spark.driver.host) is not set`);
  const before = ['--master', master, '--deploy-mode', 'client'];
  for (const [k, v] of Object.entries(settings.defaults ?? {})) before.push('--conf', `${k}=${v}`);
  const after: string[] = [];
  for (const [k, v] of Object.entries({ ...settings.conf, 'spark.driver.host': ip }))
    after.push('--conf', `${k}=${v}`);
  return { before, after };
}

/** Replaces `{name}` placeholders of `template` by the URI-encoded values (unknown ones stay). */
export function fillUrlTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z]+)\}/g, (all, name: string) =>
    Object.hasOwn(values, name) ? encodeURIComponent(values[name] as string) : all,
  );
}

/**
 * The default Spark UI link: the API server's proxy to the driver Pod's port 4040, reached
 * through `kubectl proxy` on its default address (the API server itself needs credentials a
 * browser does not have).
 */
export const DEFAULT_SPARK_UI_URL = `http://127.0.0.1:8001/api/v1/namespaces/{namespace}/pods/{pod}:${SPARK_UI_PORT}/proxy/`;

export const SPARK_UI_LINK = 'Spark UI';
