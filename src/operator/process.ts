// The operator process: health server (--api-listen), admission webhook (--webhook-listen,
// HTTPS), leader election on a Lease. The run controller is not wired yet, so leadership is
// held but nothing is reconciled; the start-up message and /readyz say so.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { KubeConfig } from '@kubernetes/client-node';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import { createOperatorMetrics } from '../metrics/operator.ts';
import { kubeAdmissionLookup } from './kube.ts';
import { kubeLeaseClient, LeaderElector, type LeaderElectorOptions } from './leader.ts';
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
  /** Leadership lost (not released): the process should exit so that it restarts clean. */
  onLostLeadership: (reason: string) => void;
}

export interface RunningOperator {
  apiUrl: string;
  webhookUrl?: string;
  elector?: LeaderElector;
  /** Releases the Lease (when leading) and closes the servers. */
  close(): Promise<void>;
}

/** What the process does today: said at start-up and on /readyz. */
export const SERVES =
  'admission webhook and leader election only: runs are not reconciled yet (the run controller is not wired into the operator)';

/** client-go's default identity: host name plus a random suffix, so two processes never share one. */
export function defaultIdentity(env: NodeJS.ProcessEnv): string {
  return `${env.POD_NAME || hostname()}_${randomUUID()}`;
}

export type Readiness = { ready: boolean; leaderElection: string; informers: string; serves: string };

export async function startOperator(config: OperatorConfig): Promise<RunningOperator> {
  const { logger } = config;
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
      onStartedLeading: () =>
        logger.info({ identity: le.identity }, `leading; this process serves ${SERVES}`),
      onStoppedLeading: ({ lost, reason }) => {
        if (lost) config.onLostLeadership(reason);
        else logger.info({ reason }, 'stopped leading');
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
      informers: 'synced (no informers: the run controller is not wired yet)',
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
    elector?.start();
    let closing: Promise<void> | undefined;
    return {
      apiUrl,
      ...(webhookUrl ? { webhookUrl } : {}),
      ...(elector ? { elector } : {}),
      close: () => {
        closing ??= (async () => {
          // Release first: a standby takes over while these servers drain.
          await elector?.stop();
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
