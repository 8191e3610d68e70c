// The operator process: health server (--api-listen), admission webhook (--webhook-listen,
// HTTPS), leader election on a Lease, and, while it holds the Lease, the reconciler
// (./reconciler.ts: the run controller and workflow services on the Kubernetes store, node
// offers and step Pods). A standby serves the webhook and health only; it starts reconciling
// when it takes the Lease, and adopts the Pods its predecessor launched.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { createOperatorMetrics } from '../metrics/operator.ts';
import { kubeAdmissionLookup } from './kube.ts';
import { kubeLeaseClient, LeaderElector, type LeaderElectorOptions } from './leader.ts';
import { type Reconciler, type ReconcilerConfig, startReconciler } from './reconciler.ts';
import { buildWebhookApp } from './webhook.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface OperatorConfig {
  kc: KubeConfig;
  /** Namespaces to serve; empty: all. */
  namespaces: string[];
  api: ListenAddress;
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
  /** The reconciler's settings (state namespace, step Pods); absent: no reconciliation (tests). */
  reconcile?: Omit<ReconcilerConfig, 'kc' | 'namespaces' | 'logger'>;
  /** Leadership lost (not released): the process should exit so that it restarts clean. */
  onLostLeadership: (reason: string) => void;
}

export interface RunningOperator {
  apiUrl: string;
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
class Leadership {
  private leading = false;
  private running: Reconciler | undefined;
  private starting: Promise<void> | undefined;
  private readonly config: OperatorConfig;
  constructor(config: OperatorConfig) {
    this.config = config;
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
          const r = await startReconciler({
            ...rc,
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
    return (async () => {
      await this.starting;
      await r?.stop();
    })();
  }
}

export async function startOperator(config: OperatorConfig): Promise<RunningOperator> {
  const { logger } = config;
  const leadership = new Leadership(config);
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
      ready: !elector || observed !== undefined,
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
  const metrics = createOperatorMetrics({ isLeader: () => !elector || elector.isLeader() });
  api.get('/metrics', { schema: text }, async (_req, reply) =>
    reply.type(metrics.contentType).send(await metrics.metrics()),
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
  const started: FastifyInstance[] = [];
  try {
    const apiUrl = await api.listen({ host: config.api.host, port: config.api.port });
    started.push(api);
    let webhookUrl: string | undefined;
    if (config.webhook) {
      webhook = await buildWebhookApp({
        lookup: kubeAdmissionLookup(config.kc),
        tls: { cert: config.webhook.cert, key: config.webhook.key },
        bodyLimit: config.webhook.bodyLimit,
        requestTimeoutMs: config.webhook.requestTimeoutMs,
        namespaces: config.namespaces,
        logger,
      });
      webhookUrl = await webhook.listen({ host: config.webhook.host, port: config.webhook.port });
      started.push(webhook);
    }
    if (elector) elector.start();
    else leadership.begin(); // --leader-elect=false: the only replica reconciles at once
    let closing: Promise<void> | undefined;
    return {
      apiUrl,
      ...(webhookUrl ? { webhookUrl } : {}),
      ...(elector ? { elector } : {}),
      reconciler: () => leadership.reconciler,
      close: () => {
        closing ??= (async () => {
          // Stop reconciling, then release: a standby takes over while these servers drain.
          const ended = leadership.end();
          await elector?.stop();
          await ended;
          await Promise.all(started.map((s) => s.close()));
        })();
        return closing;
      },
    };
  } catch (err) {
    await Promise.all(started.map((s) => s.close()));
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
