// `mesonctl operator`: the Kubernetes operator process. It serves the admission webhook,
// /healthz, /readyz and /metrics, takes part in leader election on a Lease, and while it leads
// reconciles Workflows and WorkflowRuns (Kubernetes store, node offers, one Pod per step
// attempt: src/operator/reconciler.ts). `mesonctl operator webhook-config` prints the
// ValidatingWebhookConfiguration for a CA bundle.
import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { imageProblem } from '../../../executors/safety.ts';
import { DEFAULT_SPARK_UI_URL, fillUrlTemplate } from '../../../executors/spark.ts';
import { loadPreemption, type PreemptionSettings } from '../../controller/preemption.ts';
import {
  DEFAULT_SPARK_IMAGE,
  DEFAULT_SPARK_SERVICE_ACCOUNT,
  type SparkPodOptions,
} from '../../launchers/kubernetes-pod.ts';
import { DEFAULT_METRICS_MAX_WORKFLOWS } from '../../metrics/index.ts';
import type { AllowList } from '../../notify/index.ts';
import { loadKubeConfig } from '../../operator/kube.ts';
import { LEASE_DEFAULTS } from '../../operator/leader.ts';
import type { MesosEndpointConfig } from '../../operator/mesos-endpoint.ts';
import { mesosMasterSources } from '../../operator/mesos-master.ts';
import { POD_GC_POLICIES, type PodGcPolicy } from '../../operator/pod-gc.ts';
import {
  defaultIdentity,
  type ListenAddress,
  type OperatorConfig,
  SERVES,
  startOperator,
} from '../../operator/process.ts';
import { CLIENT_RATE_DEFAULTS, type ClientRateLimits } from '../../operator/rate-limit.ts';
import { DEFAULT_STATUS_INTERVAL_MS } from '../../operator/reconciler.ts';
import { DEFAULT_WEBHOOK_BODY_LIMIT, DEFAULT_WEBHOOK_REQUEST_TIMEOUT_MS } from '../../operator/webhook.ts';
import { webhookConfiguration } from '../../operator/webhook-config.ts';
import { limitsFromEnv } from '../../store/kubernetes.ts';
import type { CliIo, Command } from '../cli.ts';
import {
  MESOS_ENDPOINT_OPTIONS,
  MESOS_ENDPOINT_USAGE,
  parseMesosEndpointOptions,
} from '../mesos-endpoint-options.ts';
import {
  MESOS_MASTER_OPTIONS,
  MESOS_MASTER_USAGE,
  type MesosServerOptions,
  parseMesosOptions,
} from '../mesos-options.ts';
import {
  OPERATOR_COPY_OPTIONS,
  OPERATOR_COPY_USAGE,
  type OperatorCopyOptions,
  parseOperatorCopyOptions,
} from '../step-options.ts';
import { apiExposure, webhookOptions } from './server.ts';

export const USAGE = `usage: mesonctl operator [flags]
       mesonctl operator webhook-config --ca-bundle FILE (--url URL | --service NS/NAME[:PORT]) [--namespace NS]...

The Kubernetes operator. It serves the validating admission webhook for meson.dev objects,
/healthz and /readyz, and takes part in leader election on a coordination.k8s.io Lease. While
it holds the Lease it reconciles Workflows (versions, triggers) and WorkflowRuns: each step
attempt is a Pod bound to the node the scheduler chose from node capacity.

  --kubeconfig FILE           cluster access (default: $KUBECONFIG, else the in-cluster service account)
  --namespace NS              serve only NS (repeatable; default all namespaces)
  --api-listen ADDR           /healthz, /readyz and /metrics (the REST API: --rest-listen)
                              (default 0.0.0.0:8080; MESON_API_LISTEN)
  --webhook-listen ADDR       admission webhook, HTTPS (default 0.0.0.0:9443; MESON_WEBHOOK_LISTEN)
  --webhook-cert FILE         serving certificate, PEM (MESON_WEBHOOK_CERT); with --webhook-key,
  --webhook-key FILE          its key (MESON_WEBHOOK_KEY); without both, no webhook is served
  --webhook-body-limit BYTES  largest AdmissionReview accepted (default ${DEFAULT_WEBHOOK_BODY_LIMIT}; MESON_WEBHOOK_BODY_LIMIT)
  --webhook-timeout SECONDS   time to receive and answer one request (default ${DEFAULT_WEBHOOK_REQUEST_TIMEOUT_MS / 1000})
  --leader-elect[=BOOL]       leader election (default true; --leader-elect=false for one replica)
  --lease-name NAME           the Lease (default meson-operator)
  --lease-namespace NS        its namespace (default $POD_NAMESPACE, else the in-cluster namespace, else meson-system)
  --lease-duration SECONDS    default ${LEASE_DEFAULTS.leaseDurationMs / 1000} (whole seconds)
  --renew-deadline SECONDS    default ${LEASE_DEFAULTS.renewDeadlineMs / 1000}
  --retry-period SECONDS      default ${LEASE_DEFAULTS.retryPeriodMs / 1000}
  --identity ID               this candidate's name (default $POD_NAME or host name, plus a random suffix)
  --state-namespace NS        where cron cursors and fired triggers are kept (ConfigMaps; default
                              the lease namespace; MESON_STATE_NAMESPACE)
  --executor-image IMAGE      image of shell, spark and copy step Pods (MESON_EXECUTOR_IMAGE)
  --spark-image IMAGE         image of spark step Pods, the Spark driver: the executor program plus
                              Spark (executors/spark.Dockerfile; default ${DEFAULT_SPARK_IMAGE};
                              MESON_SPARK_IMAGE); also Spark's executors' unless fixed below
  --spark-executor-image IMAGE  fixes the image of Spark's executor Pods (MESON_SPARK_EXECUTOR_IMAGE;
                              default: --spark-image, which a step's conf may override)
  --spark-service-account NAME  service account of spark step Pods, the only step Pods given a
                              token (default ${DEFAULT_SPARK_SERVICE_ACCOUNT}; MESON_SPARK_SERVICE_ACCOUNT)
  --spark-ui-url TEMPLATE     URL of a spark step's "Spark UI" link, {namespace} and {pod} filled in
                              (default: through kubectl proxy, ${DEFAULT_SPARK_UI_URL};
                              MESON_SPARK_UI_URL; empty: no link)
  --pod-annotation KEY=VALUE  an annotation on every step Pod and Mesos task Pod (repeatable;
                              system keys win)
  --pod-concurrency N         Pod create/delete requests in flight (default 64; MESON_POD_CONCURRENCY)
  --kube-qps N                the API client's requests per second (default ${CLIENT_RATE_DEFAULTS.qps}; MESON_KUBE_QPS;
                              0: no client-side limit); a 429 with Retry-After holds it back
  --pod-gc POLICY             delete finished step Pods: Never (default), OnRunSuccess or
                              OnRunCompletion (a finished run's), OnPodSuccess or OnPodCompletion
                              (each Pod once its attempt's end is recorded) (MESON_POD_GC); their
                              logs go with them
  --pod-gc-delay SECONDS      with OnPod*: keep a finished Pod (and its log) this long first
                              (default 0; MESON_POD_GC_DELAY; at most 86400)
  --status-interval SECONDS   write a running run's status and its steps' progress at most this
                              often (default ${DEFAULT_STATUS_INTERVAL_MS / 1000}; MESON_STATUS_INTERVAL; 0: every pass; at
                              most 60); phase changes and launches are written at once
  --kube-burst N              requests that may go at once (default ${CLIENT_RATE_DEFAULTS.burst}; MESON_KUBE_BURST)
  --rest-listen ADDR          serve the REST API and web UI here (MESON_REST_LISTEN; default off),
                              on every replica, from its own cache of the resources; the bearer
                              token is MESON_API_TOKEN, required beyond loopback unless
                              --insecure-no-auth (MESON_ALLOW_NO_AUTH=1)
  --allowed-host NAME         a Host the REST API answers to (repeatable; MESON_ALLOWED_HOSTS)
  --notify-allow LIST         private targets webhook notifications may reach (mesonctl server's
                              --webhook-allow; MESON_WEBHOOK_ALLOW; default none; docs/security.md)
  --preemption JSON|FILE      preemption by tier: which namespaces may evict lower-tier steps, their
                              tier bounds and guaranteed shares (MESON_PREEMPTION; default off;
                              docs/scheduler.md)

Metrics (/metrics on --api-listen, docs/metrics.md): labels name namespaces and workflows.
  MESON_METRICS_TOKEN          when set, /metrics requires "Authorization: Bearer <token>"
                               (/healthz and /readyz stay open); default: open like them
  MESON_METRICS_MAX_WORKFLOWS  distinct (namespace, workflow) label pairs (default ${DEFAULT_METRICS_MAX_WORKFLOWS})

${OPERATOR_COPY_USAGE}
${MESOS_ENDPOINT_USAGE}
ADDR is HOST:PORT, :PORT or [IPv6]:PORT. Logs are JSON lines (pino) on stdout; MESON_LOG_LEVEL.
SIGTERM or SIGINT releases the Lease (a standby takes over at its next retry) and exits 0.
Exit status: 2 bad usage, 1 could not start or lost the Lease.

With --mesos-master only the leader subscribes, and the framework id is a state ConfigMap, so
the next leader is the same framework and keeps its tasks (docs/mesos.md, "The operator flag").

${MESOS_MASTER_USAGE}`;

const NS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A decimal number in [min, max] from a flag or its environment variable; `dflt` when unset. */
function numberFlag(text: string | undefined, flag: string, min: number, max: number, dflt: number): number {
  if (text === undefined) return dflt;
  const n = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(n >= min && n <= max))
    throw new UsageError(`${flag}: expected a number from ${min} to ${max}, got "${text}"`);
  return n;
}

export class UsageError extends Error {
  override name = 'UsageError';
  code = 'CLI_USAGE';
}

export function parseListen(value: string, flag: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port > 65535)
    throw new UsageError(`${flag}: expected HOST:PORT, :PORT or [IPv6]:PORT, got "${value}"`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function seconds(value: string | undefined, flag: string, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 3600)
    throw new UsageError(`${flag}: expected seconds from 0 to 3600, got "${value}"`);
  return Math.round(n * 1000);
}

function namespaceFile(): string | undefined {
  try {
    return (
      readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined
    );
  } catch {
    return undefined;
  }
}

/** Takes --leader-elect, --leader-elect=BOOL and --no-leader-elect out of `args`. */
function leaderElectFlag(args: string[]): { rest: string[]; leaderElect: boolean } {
  let leaderElect = true;
  const rest: string[] = [];
  for (const a of args) {
    const m = /^--(no-)?leader-elect(?:=(.*))?$/.exec(a);
    if (!m) {
      rest.push(a);
      continue;
    }
    if (m[1] && m[2] !== undefined) throw new UsageError(`${a}: --no-leader-elect takes no value`);
    const v = m[2] ?? 'true';
    if (!['true', 'false'].includes(v))
      throw new UsageError(`--leader-elect: expected true or false, got "${v}"`);
    leaderElect = m[1] ? false : v === 'true';
  }
  return { rest, leaderElect };
}

export interface OperatorFlags {
  kubeconfig?: string;
  namespaces: string[];
  api: ListenAddress;
  webhook?: ListenAddress & {
    certFile: string;
    keyFile: string;
    bodyLimit: number;
    requestTimeoutMs: number;
  };
  leaderElection?: Omit<NonNullable<OperatorConfig['leaderElection']>, 'identity'> & { identity?: string };
  stateNamespace: string;
  executorImage?: string;
  /** Spark step Pods (--spark-*); absent: the launcher's defaults. */
  spark?: SparkPodOptions;
  podAnnotations: Record<string, string>;
  /** Concurrent Pod create/delete requests (--pod-concurrency); absent: the launcher's 64. */
  podConcurrency?: number;
  /** The API client's rate limits (--kube-qps, --kube-burst). */
  clientLimits: ClientRateLimits;
  /** Deletion of finished step Pods (--pod-gc). */
  podGc: PodGcPolicy;
  /** With OnPodSuccess/OnPodCompletion: seconds a finished Pod stays (--pod-gc-delay). */
  podGcDelaySeconds: number;
  /** Seconds between two writes of a running run's progress (--status-interval). */
  statusIntervalSeconds: number;
  /** Webhook notifications' allow-list and pending bound (--webhook-allow, MESON_WEBHOOK_*). */
  notify: { allow: AllowList; maxPending: number };
  /** The REST API and web UI (--rest-listen); absent: not served. */
  rest?: ListenAddress & { token?: string; allowedHosts: string[] | 'any' };
  /** /metrics: its bearer token (MESON_METRICS_TOKEN) and label bound (MESON_METRICS_MAX_WORKFLOWS). */
  metrics: { token?: string; maxWorkflows?: number };
  /** The Mesos scheduler endpoint (--mesos-endpoint); absent: not served. */
  mesosEndpoint?: MesosEndpointConfig;
  /** Preemption by tier (--preemption); absent: off. */
  preemption?: PreemptionSettings;
  /** A Mesos master's offers joined to the nodes' (--mesos-master); absent: nodes only. */
  mesos?: MesosServerOptions;
  /** Copy steps' object store roots, Secret and limits (--copy-root, --copy-s3-secret, --copy-max-*). */
  copy: OperatorCopyOptions;
}

/** `KEY=VALUE`, with an annotation key (optional DNS prefix, name of at most 63 characters). */
const ANNOTATION_KEY = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

function podAnnotations(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    const k = i < 0 ? '' : v.slice(0, i);
    if (i < 0 || !ANNOTATION_KEY.test(k) || k.length > 317)
      throw new UsageError(`--pod-annotation: expected KEY=VALUE with an annotation key, got "${v}"`);
    out[k] = v.slice(i + 1);
  }
  return out;
}

const SERVICE_ACCOUNT = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** The --spark-* flags (or their MESON_SPARK_* variables), checked; undefined when none is set. */
function sparkOptions(v: Record<string, unknown>, env: NodeJS.ProcessEnv): SparkPodOptions | undefined {
  const get = (flag: string, name: string) => (v[flag] as string | undefined) ?? env[name];
  const out: SparkPodOptions = {};
  for (const [flag, name, key] of [
    ['spark-image', 'MESON_SPARK_IMAGE', 'image'],
    ['spark-executor-image', 'MESON_SPARK_EXECUTOR_IMAGE', 'executorImage'],
  ] as const) {
    const image = get(flag, name) || undefined;
    if (image === undefined) continue;
    const bad = imageProblem(image);
    if (bad) throw new UsageError(`--${flag}: ${bad}`);
    out[key] = image;
  }
  const sa = get('spark-service-account', 'MESON_SPARK_SERVICE_ACCOUNT') || undefined;
  if (sa !== undefined) {
    if (!SERVICE_ACCOUNT.test(sa))
      throw new UsageError(`--spark-service-account: expected a service account name, got "${sa}"`);
    out.serviceAccountName = sa;
  }
  const url = get('spark-ui-url', 'MESON_SPARK_UI_URL');
  if (url !== undefined) {
    const bad = uiUrlProblem(url);
    if (bad) throw new UsageError(`--spark-ui-url: ${bad}`);
    out.uiUrl = url;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Why a Spark UI URL template cannot make web links ('' is fine: no link), or undefined. */
function uiUrlProblem(template: string): string | undefined {
  const unknown = [...template.matchAll(/\{([^}]*)\}/g)].find((m) => m[1] !== 'namespace' && m[1] !== 'pod');
  if (unknown) return `unknown placeholder ${unknown[0]} (expected {namespace} and {pod})`;
  if (template === '') return undefined;
  try {
    const u = new URL(fillUrlTemplate(template, { namespace: 'ns', pod: 'pod' }));
    if (u.protocol === 'http:' || u.protocol === 'https:') return undefined;
  } catch {
    // not a URL
  }
  return `expected an http(s) URL template such as ${DEFAULT_SPARK_UI_URL}, got "${template}"`;
}

/** The flags of `mesonctl operator`, checked (throws UsageError). Pure apart from env defaults. */
export function parseOperatorArgs(
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
): OperatorFlags | 'help' {
  const { rest, leaderElect } = leaderElectFlag(args);
  let parsed: ReturnType<typeof parseOperatorOptions>;
  try {
    parsed = parseOperatorOptions(rest);
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const namespaces = v.namespace ?? [];
  for (const ns of namespaces)
    if (!NS.test(ns) || ns.length > 63)
      throw new UsageError(`--namespace: expected a namespace name, got "${ns}"`);
  const abs = (p: string) => (isAbsolute(p) ? p : join(cwd, p));
  const certFile = v['webhook-cert'] ?? (env.MESON_WEBHOOK_CERT || undefined);
  const keyFile = v['webhook-key'] ?? (env.MESON_WEBHOOK_KEY || undefined);
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new UsageError(
      '--webhook-cert and --webhook-key go together: give both (or neither, for no webhook)',
    );
  const limitText = v['webhook-body-limit'] ?? env.MESON_WEBHOOK_BODY_LIMIT;
  const bodyLimit = limitText === undefined ? DEFAULT_WEBHOOK_BODY_LIMIT : Number(limitText);
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024 || bodyLimit > 64 * 1024 * 1024)
    throw new UsageError(`--webhook-body-limit: expected bytes from 1024 to 67108864, got "${limitText}"`);
  const defaultNamespace = v['lease-namespace'] ?? (env.POD_NAMESPACE || namespaceFile() || 'meson-system');
  const stateNamespace = v['state-namespace'] ?? (env.MESON_STATE_NAMESPACE || defaultNamespace);
  if (!NS.test(stateNamespace) || stateNamespace.length > 63)
    throw new UsageError(`--state-namespace: expected a namespace name, got "${stateNamespace}"`);
  const executorImage = v['executor-image'] ?? (env.MESON_EXECUTOR_IMAGE || undefined);
  if (executorImage !== undefined && !/^[^\s]{1,512}$/.test(executorImage))
    throw new UsageError(`--executor-image: expected an image reference, got "${executorImage}"`);
  let notify: OperatorFlags['notify'];
  try {
    notify = webhookOptions(
      { 'webhook-allow': v['notify-allow'] } as Parameters<typeof webhookOptions>[0],
      env,
    );
  } catch (err) {
    throw new UsageError(`--notify-allow: ${(err as Error).message}`, { cause: err });
  }
  const concurrencyText = v['pod-concurrency'] ?? env.MESON_POD_CONCURRENCY;
  const podConcurrency = concurrencyText === undefined ? undefined : Number(concurrencyText);
  if (
    podConcurrency !== undefined &&
    (!Number.isInteger(podConcurrency) || podConcurrency < 1 || podConcurrency > 1024)
  )
    throw new UsageError(`--pod-concurrency: expected 1 to 1024, got "${concurrencyText}"`);
  const maxText = env.MESON_METRICS_MAX_WORKFLOWS || undefined;
  const maxWorkflows = maxText === undefined ? undefined : Number(maxText);
  if (maxWorkflows !== undefined && (!Number.isInteger(maxWorkflows) || maxWorkflows < 1))
    throw new UsageError(`MESON_METRICS_MAX_WORKFLOWS: expected a positive integer, got "${maxText}"`);
  const metricsToken = env.MESON_METRICS_TOKEN || undefined;
  let mesosEndpoint: MesosEndpointConfig | undefined;
  try {
    mesosEndpoint = parseMesosEndpointOptions(v, env, { namespace: stateNamespace }, parseListen);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message, { cause: err });
  }
  const qps = numberFlag(
    v['kube-qps'] ?? env.MESON_KUBE_QPS,
    '--kube-qps',
    0,
    100_000,
    CLIENT_RATE_DEFAULTS.qps,
  );
  const burst = numberFlag(
    v['kube-burst'] ?? env.MESON_KUBE_BURST,
    '--kube-burst',
    1,
    100_000,
    CLIENT_RATE_DEFAULTS.burst,
  );
  if (!Number.isInteger(burst)) throw new UsageError(`--kube-burst: expected a whole number, got "${burst}"`);
  const podGc = (v['pod-gc'] ?? env.MESON_POD_GC ?? 'Never') as PodGcPolicy;
  if (!POD_GC_POLICIES.includes(podGc))
    throw new UsageError(`--pod-gc: expected one of ${POD_GC_POLICIES.join(', ')}, got "${podGc}"`);
  const podGcDelaySeconds = numberFlag(
    v['pod-gc-delay'] ?? env.MESON_POD_GC_DELAY,
    '--pod-gc-delay',
    0,
    86_400,
    0,
  );
  const statusIntervalSeconds = numberFlag(
    v['status-interval'] ?? env.MESON_STATUS_INTERVAL,
    '--status-interval',
    0,
    60,
    DEFAULT_STATUS_INTERVAL_MS / 1000,
  );
  const preemptionText = v.preemption ?? (env.MESON_PREEMPTION || undefined);
  let preemption: PreemptionSettings | undefined;
  try {
    preemption = preemptionText === undefined ? undefined : loadPreemption(preemptionText, cwd);
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  let mesos: MesosServerOptions | undefined;
  try {
    mesos = parseMesosOptions(v, env);
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  let copy: OperatorCopyOptions;
  try {
    copy = parseOperatorCopyOptions(v, env);
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  const spark = sparkOptions(v, env);
  const flags: OperatorFlags = {
    copy,
    ...(spark ? { spark } : {}),
    metrics: { ...(metricsToken ? { token: metricsToken } : {}), ...(maxWorkflows ? { maxWorkflows } : {}) },
    ...(mesosEndpoint ? { mesosEndpoint } : {}),
    clientLimits: { qps, burst },
    podGc,
    podGcDelaySeconds,
    statusIntervalSeconds,
    ...(mesos ? { mesos } : {}),
    ...(podConcurrency ? { podConcurrency } : {}),
    ...(preemption ? { preemption } : {}),
    notify,
    namespaces: [...new Set(namespaces)],
    api: parseListen(v['api-listen'] ?? env.MESON_API_LISTEN ?? '0.0.0.0:8080', '--api-listen'),
    stateNamespace,
    ...(executorImage ? { executorImage } : {}),
    podAnnotations: podAnnotations(v['pod-annotation'] ?? []),
  };
  const kubeconfig = v.kubeconfig === undefined ? undefined : abs(v.kubeconfig);
  if (kubeconfig) flags.kubeconfig = kubeconfig;
  const restListen = v['rest-listen'] ?? (env.MESON_REST_LISTEN || undefined);
  if (restListen !== undefined) {
    const at = parseListen(restListen, '--rest-listen');
    const token = env.MESON_API_TOKEN || undefined;
    const { refused, allowedHosts } = apiExposure(at.host, token, v, env);
    if (refused)
      throw new UsageError(
        `--rest-listen ${restListen}: refusing to serve the REST API beyond loopback without MESON_API_TOKEN (or --insecure-no-auth if the network is trusted)`,
      );
    flags.rest = { ...at, ...(token ? { token } : {}), allowedHosts };
  }
  if (certFile && keyFile)
    flags.webhook = {
      ...parseListen(v['webhook-listen'] ?? env.MESON_WEBHOOK_LISTEN ?? '0.0.0.0:9443', '--webhook-listen'),
      certFile: abs(certFile),
      keyFile: abs(keyFile),
      bodyLimit,
      requestTimeoutMs: seconds(
        v['webhook-timeout'],
        '--webhook-timeout',
        DEFAULT_WEBHOOK_REQUEST_TIMEOUT_MS,
      ),
    };
  if (leaderElect) {
    const leaseNamespace = defaultNamespace;
    const leaseName = v['lease-name'] ?? 'meson-operator';
    if (!NS.test(leaseNamespace))
      throw new UsageError(`--lease-namespace: expected a namespace name, got "${leaseNamespace}"`);
    if (!NS.test(leaseName) || leaseName.length > 253)
      throw new UsageError(`--lease-name: expected a lower-case name, got "${leaseName}"`);
    flags.leaderElection = {
      namespace: leaseNamespace,
      name: leaseName,
      leaseDurationMs: seconds(v['lease-duration'], '--lease-duration', LEASE_DEFAULTS.leaseDurationMs),
      renewDeadlineMs: seconds(v['renew-deadline'], '--renew-deadline', LEASE_DEFAULTS.renewDeadlineMs),
      retryPeriodMs: seconds(v['retry-period'], '--retry-period', LEASE_DEFAULTS.retryPeriodMs),
      ...(v.identity ? { identity: v.identity } : {}),
    };
  }
  return flags;
}

function parseOperatorOptions(args: string[]) {
  return parseArgs({
    args,
    options: {
      kubeconfig: { type: 'string' },
      namespace: { type: 'string', multiple: true },
      'api-listen': { type: 'string' },
      'webhook-listen': { type: 'string' },
      'webhook-cert': { type: 'string' },
      'webhook-key': { type: 'string' },
      'webhook-body-limit': { type: 'string' },
      'webhook-timeout': { type: 'string' },
      'lease-name': { type: 'string' },
      'lease-namespace': { type: 'string' },
      'lease-duration': { type: 'string' },
      'renew-deadline': { type: 'string' },
      'retry-period': { type: 'string' },
      identity: { type: 'string' },
      'state-namespace': { type: 'string' },
      'executor-image': { type: 'string' },
      'spark-image': { type: 'string' },
      'spark-executor-image': { type: 'string' },
      'spark-service-account': { type: 'string' },
      'spark-ui-url': { type: 'string' },
      'pod-annotation': { type: 'string', multiple: true },
      'rest-listen': { type: 'string' },
      'notify-allow': { type: 'string' },
      'pod-concurrency': { type: 'string' },
      'pod-gc-delay': { type: 'string' },
      'status-interval': { type: 'string' },
      'kube-qps': { type: 'string' },
      'pod-gc': { type: 'string' },
      'kube-burst': { type: 'string' },
      preemption: { type: 'string' },
      'allowed-host': { type: 'string', multiple: true },
      'insecure-no-auth': { type: 'boolean' },
      ...OPERATOR_COPY_OPTIONS,
      ...MESOS_ENDPOINT_OPTIONS,
      ...MESOS_MASTER_OPTIONS,
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
}

export const WEBHOOK_CONFIG_USAGE = `usage: mesonctl operator webhook-config --ca-bundle FILE (--url URL | --service NS/NAME[:PORT]) [--namespace NS]... [--name NAME]

Prints the ValidatingWebhookConfiguration (YAML) that sends meson.dev Workflow, WorkflowRun and
DataArtifact writes to the operator's webhook, trusting the CA in FILE (PEM). Default service:
meson-system/meson-operator-webhook:443. --namespace limits it to those namespaces.
`;

function webhookConfigCommand(args: string[], io: CliIo): number {
  let v: {
    'ca-bundle'?: string;
    url?: string;
    service?: string;
    namespace?: string[];
    name?: string;
    help?: boolean;
  };
  try {
    v = parseArgs({
      args,
      options: {
        'ca-bundle': { type: 'string' },
        url: { type: 'string' },
        service: { type: 'string' },
        namespace: { type: 'string', multiple: true },
        name: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (err) {
    io.stderr(`mesonctl operator webhook-config: ${(err as Error).message}\n${WEBHOOK_CONFIG_USAGE}`);
    return 2;
  }
  if (v.help) {
    io.stdout(WEBHOOK_CONFIG_USAGE);
    return 0;
  }
  const fail = (m: string) => {
    io.stderr(`mesonctl operator webhook-config: ${m}\n`);
    return 2;
  };
  if (!v['ca-bundle'])
    return fail('--ca-bundle FILE is required (the PEM CA that signed the serving certificate)');
  if (v.url && v.service) return fail('give --url or --service, not both');
  let caBundle: string;
  try {
    const file = v['ca-bundle'];
    caBundle = readFileSync(isAbsolute(file) ? file : join(io.cwd, file), 'utf8');
  } catch (err) {
    return fail(`--ca-bundle: cannot read ${v['ca-bundle']}: ${(err as Error).message}`);
  }
  if (!caBundle.includes('-----BEGIN CERTIFICATE-----'))
    return fail('--ca-bundle: expected a PEM certificate');
  if (v.url !== undefined && (!URL.canParse(v.url) || new URL(v.url).protocol !== 'https:'))
    return fail(`--url: expected an https:// URL, got "${v.url}"`);
  let service: { namespace: string; name: string; port: number } | undefined;
  if (v.service !== undefined) {
    const m = /^([a-z0-9-]+)\/([a-z0-9.-]+)(?::(\d{1,5}))?$/.exec(v.service);
    if (!m) return fail(`--service: expected NAMESPACE/NAME[:PORT], got "${v.service}"`);
    service = { namespace: m[1]!, name: m[2]!, port: Number(m[3] ?? 443) };
  }
  for (const ns of v.namespace ?? [])
    if (!NS.test(ns)) return fail(`--namespace: expected a namespace name, got "${ns}"`);
  io.stdout(
    stringify(
      webhookConfiguration({
        caBundle,
        ...(v.url ? { url: v.url } : {}),
        ...(service ? { service } : {}),
        ...(v.namespace ? { namespaces: v.namespace } : {}),
        ...(v.name ? { name: v.name } : {}),
      }),
    ),
  );
  return 0;
}

export const operatorCommand: Command = async (args, io) => {
  if (args[0] === 'webhook-config') return webhookConfigCommand(args.slice(1), io);
  let flags: OperatorFlags | 'help';
  try {
    flags = parseOperatorArgs(args, io.env, io.cwd);
  } catch (err) {
    io.stderr(`mesonctl operator: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (flags === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  const logger = pino({ level: io.env.MESON_LOG_LEVEL ?? 'info', base: { component: 'meson-operator' } });
  let config: OperatorConfig;
  try {
    const { kc, source } = loadKubeConfig(flags.kubeconfig, io.env);
    const webhook = flags.webhook
      ? {
          ...flags.webhook,
          cert: readFileSync(flags.webhook.certFile, 'utf8'),
          key: readFileSync(flags.webhook.keyFile, 'utf8'),
        }
      : undefined;
    config = {
      kc,
      clientLimits: flags.clientLimits,
      namespaces: flags.namespaces,
      api: flags.api,
      ...(flags.rest ? { rest: { ...flags.rest, stateNamespace: flags.stateNamespace } } : {}),
      ...(webhook ? { webhook } : {}),
      ...(flags.leaderElection
        ? {
            leaderElection: {
              ...flags.leaderElection,
              identity: flags.leaderElection.identity ?? defaultIdentity(io.env),
            },
          }
        : {}),
      logger,
      metrics: flags.metrics,
      reconcile: {
        stateNamespace: flags.stateNamespace,
        webhook: flags.notify,
        ...(flags.podConcurrency ? { podConcurrency: flags.podConcurrency } : {}),
        ...(flags.mesosEndpoint
          ? {
              mesosEndpoint: {
                ...flags.mesosEndpoint,
                ...(Object.keys(flags.podAnnotations).length > 0
                  ? { annotations: flags.podAnnotations }
                  : {}),
              },
            }
          : {}),
        podGc: flags.podGc,
        podGcDelayMs: flags.podGcDelaySeconds * 1000,
        statusIntervalMs: flags.statusIntervalSeconds * 1000,
        ...(flags.preemption ? { preemption: flags.preemption } : {}),
        ...(flags.mesos ? { wrapSources: mesosMasterSources(flags.mesos, logger) } : {}),
        storeLimits: limitsFromEnv(io.env),
        pods: {
          ...(flags.executorImage ? { executorImage: flags.executorImage } : {}),
          ...(flags.spark ? { spark: flags.spark } : {}),
          ...(Object.keys(flags.podAnnotations).length > 0 ? { annotations: flags.podAnnotations } : {}),
          copy: flags.copy,
        },
      },
      onLostLeadership: (reason) => {
        // Like kube-controller-manager: a process that lost its Lease exits and restarts clean.
        logger.error({ reason }, 'lost the Lease; exiting');
        process.exit(1);
      },
    };
    logger.info(
      {
        kubeconfig: source,
        cluster: kc.getCurrentCluster()?.server,
        clientLimits:
          flags.clientLimits.qps === 0
            ? 'none'
            : `${flags.clientLimits.qps} qps, burst ${flags.clientLimits.burst}`,
      },
      'cluster access',
    );
  } catch (err) {
    io.stderr(`mesonctl operator: ${(err as Error).message}\n`);
    return 1;
  }
  let running: Awaited<ReturnType<typeof startOperator>>;
  try {
    running = await startOperator(config);
  } catch (err) {
    io.stderr(`mesonctl operator: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const scope = flags.namespaces.length ? flags.namespaces.join(', ') : 'all namespaces';
  logger.info(
    {
      api: running.apiUrl,
      rest: running.restUrl ?? 'off (no --rest-listen)',
      webhook: running.webhookUrl ?? 'off (no --webhook-cert/--webhook-key)',
      mesosEndpoint: flags.mesosEndpoint
        ? `${flags.mesosEndpoint.host}:${flags.mesosEndpoint.port} while leading (tasks in ${flags.mesosEndpoint.namespace})`
        : 'off (no --mesos-endpoint)',
      namespaces: scope,
      mesos: flags.mesos?.master ?? 'off (no --mesos-master)',
      leaderElection: config.leaderElection
        ? `${config.leaderElection.namespace}/${config.leaderElection.name} as ${config.leaderElection.identity}`
        : 'off',
    },
    'meson operator started',
  );
  io.stderr(`mesonctl operator: serves ${SERVES}.\n`);
  const shutdown = async (signal: string) => {
    logger.info({ signal }, 'shutting down: releasing the Lease, closing servers');
    await running.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  return undefined;
};
