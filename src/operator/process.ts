// The operator process: health server (--api-listen), admission webhook (--webhook-listen,
// HTTPS), leader election on a Lease, and, while it holds the Lease, the reconciler
// (./reconciler.ts: the run controller and workflow services on the Kubernetes store, node
// offers and step Pods). A standby serves the webhook and health only; it starts reconciling
// when it takes the Lease, and adopts the Pods its predecessor launched.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { tokenMatches } from '../api/app.ts';
import { buildOperatorApi } from '../api/operator.ts';
import { type GaugeSource, gaugeSource } from '../metrics/index.ts';
import { kubeClientMetrics } from '../metrics/kube-client.ts';
import { createOperatorMetrics } from '../metrics/operator.ts';
import { KubernetesStore } from '../store/kubernetes.ts';
import type { AdmissionPolicy } from './admission.ts';
import { kubeAdmissionLookup, whoAmI } from './kube.ts';
import { kubeLeaseClient, LeaderElector, type LeaderElectorOptions } from './leader.ts';
import { type ClientRateLimits, RateLimitedKubeConfig } from './rate-limit.ts';
import { type Reconciler, type ReconcilerConfig, startReconciler } from './reconciler.ts';
import { buildWebhookApp } from './webhook.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface OperatorConfig {
  kc: KubeConfig;
  /**
   * Client-side rate limits of the reconciler's and the REST API's requests (--kube-qps,
   * --kube-burst). Leader election and the admission webhook's lookups use `kc` unlimited: a
   * lease renewal or a user's `kubectl apply` must not queue behind a burst of pod creates.
   * Absent: no client-side limit.
   */
  clientLimits?: ClientRateLimits;
  /** Namespaces to serve; empty: all. */
  namespaces: string[];
  api: ListenAddress;
  /**
   * The REST API and web UI (buildOperatorApi) over a store of this process's own (informers on
   * every replica, leading or not: a standby answers reads and writes the resources, which the
   * leader's controller then sees). Absent: not served.
   */
  rest?: ListenAddress & { token?: string; allowedHosts: string[] | 'any'; stateNamespace: string };
  /** Absent: no webhook (no serving certificate given). */
  webhook?: ListenAddress & { cert: string; key: string; bodyLimit: number; requestTimeoutMs: number };
  /** Absent: --leader-elect=false (this process acts as the only leader). */
  leaderElection?: {
    namespace: string;
    name: string;
    identity: string;
    leaseDurationMs: number;
    renewDeadlineMs: number;
    retryPeriodMs: number;
  };
  logger: FastifyBaseLogger;
  /**
   * /metrics: `token` set, it requires "Authorization: Bearer <token>" (its labels name
   * namespaces and workflows); `maxWorkflows` bounds the distinct (namespace, workflow) label
   * pairs (default DEFAULT_METRICS_MAX_WORKFLOWS).
   */
  metrics?: { token?: string; maxWorkflows?: number };
  /** The reconciler's settings (state namespace, step Pods); absent: no reconciliation (tests). */
  reconcile?: Omit<ReconcilerConfig, 'kc' | 'namespaces' | 'logger'>;
  /** Leadership lost (not released): the process should exit so that it restarts clean. */
  onLostLeadership: (reason: string) => void;
}

export interface RunningOperator {
  apiUrl: string;
  restUrl?: string;
  webhookUrl?: string;
  elector?: LeaderElector;
  /** The running reconciler (while leading and started). */
  reconciler(): Reconciler | undefined;
  /** Releases the Lease (when leading) and closes the servers. */
  close(): Promise<void>;
}

/** What the process does: said at start-up and on /readyz. */
export const SERVES =
  'admission webhook, leader election and, while leading, reconciliation of workflows and runs (step attempts as Pods on node capacity)';

/** client-go's default identity: host name plus a random suffix, so two processes never share one. */
export function defaultIdentity(env: NodeJS.ProcessEnv): string {
  return `${env.POD_NAME || hostname()}_${randomUUID()}`;
}

export type Readiness = { ready: boolean; leaderElection: string; informers: string; serves: string };

/**
 * Runs the reconciler while this process leads: started when it takes the Lease (retried with
 * backoff while the informers cannot start), halted at once when it steps down.
 */
export class Leadership {
  private leading = false;
  private running: Reconciler | undefined;
  private starting: Promise<void> | undefined;
  private readonly config: Pick<
    OperatorConfig,
    'reconcile' | 'kc' | 'namespaces' | 'logger' | 'leaderElection'
  >;
  private readonly start: typeof startReconciler;
  constructor(
    config: Pick<OperatorConfig, 'reconcile' | 'kc' | 'namespaces' | 'logger' | 'leaderElection'>,
    start: typeof startReconciler = startReconciler,
  ) {
    this.config = config;
    this.start = start;
  }

  get reconciler(): Reconciler | undefined {
    return this.running;
  }

  describe(): string {
    if (!this.config.reconcile) return 'off (no reconciler configured)';
    if (this.running) return 'synced: reconciling';
    return this.leading ? 'starting: listing objects' : 'not started: standing by';
  }

  begin(): void {
    const rc = this.config.reconcile;
    if (!rc) return;
    this.leading = true;
    if (this.starting || this.running) return;
    const { logger } = this.config;
    this.starting = (async () => {
      for (let attempt = 1; this.leading && !this.running; attempt++) {
        try {
          const r = await this.start({
            ...rc,
            ...(this.config.leaderElection ? { identity: this.config.leaderElection.identity } : {}),
            kc: this.config.kc,
            namespaces: this.config.namespaces,
            logger,
          });
          if (!this.leading) {
            await r.stop();
            return;
          }
          this.running = r;
          logger.info({ namespaces: this.config.namespaces.join(', ') || 'all' }, 'reconciling');
        } catch (err) {
          const delay = Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 6));
          logger.error({ err: (err as Error).message, retryInMs: delay }, 'cannot start reconciling');
          await new Promise((r) => setTimeout(r, delay).unref());
        }
      }
    })().finally(() => {
      this.starting = undefined;
    });
  }

  /** Stops launching at once (synchronously), then closes the informers. */
  end(): Promise<void> {
    this.leading = false;
    const r = this.running;
    this.running = undefined;
    r?.controller.stop();
    r?.mesos?.master.stop(); // no framework call is taken (nor a task Pod created) once not leading
    return (async () => {
      await this.starting;
      await r?.stop();
    })();
  }
}

export async function startOperator(config: OperatorConfig): Promise<RunningOperator> {
  const { logger } = config;
  const metrics = createOperatorMetrics({
    isLeader: () => !elector || elector.isLeader(),
    ...(config.metrics?.maxWorkflows ? { maxWorkflows: config.metrics.maxWorkflows } : {}),
  });
  const kc = config.clientLimits
    ? new RateLimitedKubeConfig(config.kc, config.clientLimits, kubeClientMetrics(metrics.registry))
    : config.kc;
  const leadership = new Leadership(
    config.reconcile
      ? {
          ...config,
          kc,
          reconcile: {
            ...config.reconcile,
            observer: metrics.controller,
            webhook: { ...config.reconcile.webhook, observer: metrics.webhooks },
          },
        }
      : { ...config, kc },
  );
  // gauges (active runs, step instances, tasks) from the leader's store; none on a follower
  const gauges = new WeakMap<KubernetesStore, GaugeSource>();
  metrics.gaugesFrom(() => {
    const store = leadership.reconciler?.store;
    if (!store) return undefined;
    let g = gauges.get(store);
    if (!g) {
      g = gaugeSource(store);
      gauges.set(store, g);
    }
    return g;
  });
  let elector: LeaderElector | undefined;
  if (config.leaderElection) {
    const le = config.leaderElection;
    const options: LeaderElectorOptions = {
      client: kubeLeaseClient(config.kc, le.namespace, le.name),
      identity: le.identity,
      leaseDurationMs: le.leaseDurationMs,
      renewDeadlineMs: le.renewDeadlineMs,
      retryPeriodMs: le.retryPeriodMs,
      logger,
      onStartedLeading: () => {
        logger.info({ identity: le.identity }, `leading; this process serves ${SERVES}`);
        leadership.begin();
      },
      onStoppedLeading: ({ lost, reason }) => {
        // no Pod is created once leadership is gone (the controller stops synchronously)
        const ended = leadership.end();
        if (lost) config.onLostLeadership(reason);
        else {
          logger.info({ reason }, 'stopped leading');
          void ended;
        }
      },
      onNewLeader: (holder) => logger.info({ leader: holder || '(none)' }, 'lease holder changed'),
    };
    elector = new LeaderElector(options);
  }

  const readiness = (): Readiness => {
    const observed = elector?.observedLeader();
    const leaderElection = !elector
      ? 'disabled (acting as the only leader)'
      : elector.isLeader()
        ? 'leading'
        : observed === undefined
          ? 'pending: the Lease has not been read yet'
          : `standing by (leader: ${observed || 'none'})`;
    return {
      ready: (!elector || observed !== undefined) && identityKnown,
      leaderElection,
      informers: leadership.describe(),
      serves: SERVES,
    };
  };

  const api = Fastify({
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
  }) as unknown as FastifyInstance;
  const text = { response: { 200: { type: 'string' } } };
  api.get('/healthz', { schema: text }, async () => 'ok');
  const metricsToken = config.metrics?.token;
  api.get(
    '/metrics',
    { schema: { response: { 200: { type: 'string' }, 401: { type: 'string' } } } },
    async (req, reply) => {
      if (metricsToken && !tokenMatches(req.headers.authorization, metricsToken))
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer')
          .type('text/plain')
          .send('/metrics needs "Authorization: Bearer <MESON_METRICS_TOKEN>"');
      return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    },
  );
  api.get(
    '/readyz',
    {
      schema: {
        response: {
          '2xx': READY_SCHEMA,
          '5xx': READY_SCHEMA,
        },
      },
    },
    async (_req, reply) => {
      const r = readiness();
      return reply.code(r.ready ? 200 : 503).send(r);
    },
  );

  let webhook: FastifyInstance | undefined;
  let restStore: KubernetesStore | undefined;
  const started: FastifyInstance[] = [];
  // Only this process may write a run's system-owned fields (cron/artifact/backfill/subworkflow
  // initiators, trigger fields, parents, meson.dev/ keys): it creates those runs itself. Until
  // the API server has said who this process is, nobody may (fail closed; the controller
  // retries what was refused), and the process is alive but not ready.
  // spark steps run spark-submit on this cluster with settings the operator owns (executors/spark.ts)
  const policy: AdmissionPolicy = {
    systemUsers: [],
    spark: { fixedImage: config.reconcile?.pods?.spark?.executorImage !== undefined },
  };
  let identityKnown = !config.webhook;
  let stopIdentity = false;
  const learnIdentity = async () => {
    for (let delay = 500; !stopIdentity; delay = Math.min(delay * 2, 10_000)) {
      try {
        const self = await whoAmI(config.kc);
        policy.systemUsers = [self];
        identityKnown = true;
        logger.info({ user: self }, 'admission: system-owned run fields are reserved to this user');
        return;
      } catch (err) {
        logger.warn(
          { err: (err as Error).message },
          'cannot learn who this process is yet (SelfSubjectReview)',
        );
        await new Promise((r) => setTimeout(r, delay).unref());
      }
    }
  };
  try {
    const apiUrl = await api.listen({ host: config.api.host, port: config.api.port });
    started.push(api);
    let webhookUrl: string | undefined;
    if (config.webhook) {
      webhook = await buildWebhookApp({
        lookup: kubeAdmissionLookup(config.kc),
        policy,
        tls: { cert: config.webhook.cert, key: config.webhook.key },
        bodyLimit: config.webhook.bodyLimit,
        requestTimeoutMs: config.webhook.requestTimeoutMs,
        namespaces: config.namespaces,
        logger,
      });
      webhookUrl = await webhook.listen({ host: config.webhook.host, port: config.webhook.port });
      started.push(webhook);
      void learnIdentity();
    }
    let restUrl: string | undefined;
    if (config.rest) {
      restStore = await KubernetesStore.open({
        kubeConfig: kc,
        ...(config.namespaces.length ? { namespaces: config.namespaces } : {}),
        stateNamespace: config.rest.stateNamespace,
        log: (message, fields) => logger.warn(fields ?? {}, `rest store: ${message}`),
      });
      const rest = await buildOperatorApi({
        store: restStore,
        kubeConfig: kc,
        ...(config.rest.token ? { token: config.rest.token } : {}),
        allowedHosts: config.rest.allowedHosts,
        logger,
      });
      restUrl = await rest.listen({ host: config.rest.host, port: config.rest.port });
      started.push(rest);
    }
    if (elector) elector.start();
    else leadership.begin(); // --leader-elect=false: the only replica reconciles at once
    let closing: Promise<void> | undefined;
    return {
      apiUrl,
      ...(restUrl ? { restUrl } : {}),
      ...(webhookUrl ? { webhookUrl } : {}),
      ...(elector ? { elector } : {}),
      reconciler: () => leadership.reconciler,
      close: () => {
        closing ??= (async () => {
          stopIdentity = true;
          // Stop reconciling, then release: a standby takes over while these servers drain.
          const ended = leadership.end();
          await elector?.stop();
          await ended;
          await Promise.all(started.map((s) => s.close()));
          await restStore?.close();
        })();
        return closing;
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.close()));
    await restStore?.close().catch(() => {});
    throw err;
  }
}

const READY_SCHEMA = {
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    leaderElection: { type: 'string' },
    informers: { type: 'string' },
    serves: { type: 'string' },
  },
} as const;
