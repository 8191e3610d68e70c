// `mesonctl operator --mesos-endpoint HOST:PORT`: the master-compatible Mesos scheduler endpoint
// (src/mesos-compat/master.ts) on the operator's own Kubernetes ports. Its offers are node
// capacity from the reconciler's offer source (the same NodeCapacity the run controller places
// steps on), its tasks are Pods (src/mesos-compat/pod-runner.ts) whose events come from the
// reconciler's Pod informer. It runs on the leader only, started and stopped with the reconciler
// (see docs/mesos.md for why a standby does not serve it).
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import type { KubernetesLauncher } from '../launchers/kubernetes.ts';
import { KubernetesTaskOffers, stepCompetition } from '../mesos-compat/kubernetes-offers.ts';
import {
  createMesosMasterServer,
  type MesosCredentials,
  MesosMaster,
  type MesosMasterOptions,
} from '../mesos-compat/master.ts';
import { PodTaskRunner } from '../mesos-compat/pod-runner.ts';
import type { KubernetesOfferSource } from '../offer-adapter/kubernetes.ts';
import type { PortRange } from '../offer-adapter/types.ts';

/** The numeric limits of the endpoint a flag may set (MesosMasterOptions). */
export type MesosEndpointLimits = Partial<
  Pick<
    MesosMasterOptions,
    | 'heartbeatIntervalSeconds'
    | 'allocationIntervalMs'
    | 'offerTimeoutMs'
    | 'statusRetryMs'
    | 'maxStreamBufferBytes'
    | 'maxCallBytes'
    | 'maxFrameworks'
    | 'maxCompletedTasks'
  >
>;

export interface MesosEndpointConfig {
  host: string;
  port: number;
  /** Namespace of the task Pods. */
  namespace: string;
  /** Image of tasks that name none. */
  image?: string;
  /** Host ports offered per node. */
  ports?: PortRange[];
  /** HTTP Basic credentials frameworks must send; absent: none (loopback, or --insecure-no-auth). */
  credentials?: MesosCredentials;
  limits?: MesosEndpointLimits;
}

export interface MesosEndpointLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface RunningMesosEndpoint {
  url: string;
  master: MesosMaster;
  runner: PodTaskRunner;
  /** Stops offering and closes every framework's stream; task Pods keep running. */
  close(): Promise<void>;
}

/**
 * Wires the endpoint to the reconciler's pieces. `launcher` must not have started its informer
 * yet (the runner listens to it); `queued` is the run controller's queued step count.
 */
export function mesosEndpointRunner(
  config: MesosEndpointConfig,
  kc: KubeConfig,
  offers: KubernetesOfferSource,
  launcher: KubernetesLauncher,
  logger: MesosEndpointLogger,
): PodTaskRunner {
  const core = kc.makeApiClient(CoreV1Api);
  const runner = new PodTaskRunner({
    namespace: config.namespace,
    ...(config.image ? { image: config.image } : {}),
    capacity: offers,
    logger,
    client: {
      create: async (namespace, body) => {
        await core.createNamespacedPod({ namespace, body });
      },
      delete: async (namespace, name) => {
        await core.deleteNamespacedPod({ name, namespace });
      },
      cached: (namespace, name) => launcher.cachedPod(namespace, name),
    },
  });
  launcher.addPodListener(runner);
  return runner;
}

/** Starts serving; resolves once listening. */
export async function startMesosEndpoint(opts: {
  config: MesosEndpointConfig;
  offers: KubernetesOfferSource;
  runner: PodTaskRunner;
  /** Steps queued at the run controller's last pass. */
  queued: () => number;
  logger: MesosEndpointLogger;
}): Promise<RunningMesosEndpoint> {
  const { config, offers, runner, logger } = opts;
  const master = new MesosMaster({
    ...config.limits,
    offers: new KubernetesTaskOffers({
      capacity: offers.capacity,
      portsInUse: (node) => runner.portsInUse(node),
      ...(config.ports ? { ports: config.ports } : {}),
    }),
    runner,
    competition: stepCompetition({
      capacity: offers.capacity,
      tasksHeld: () => runner.held(),
      queued: opts.queued,
    }),
    // every task is a Pod: it takes one of the node's Pod slots
    taskOverhead: { pods: 1 },
    logger,
  });
  const app: FastifyInstance = createMesosMasterServer(master, {
    ...(config.credentials ? { credentials: config.credentials } : {}),
  });
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await app.close();
    runner.close();
    throw err;
  }
  master.start();
  const address = app.server.address();
  const url =
    typeof address === 'object' && address
      ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
      : `http://${config.host}:${config.port}`;
  logger.info(
    { url, namespace: config.namespace, auth: config.credentials ? 'basic' : 'none' },
    'serving the mesos scheduler endpoint',
  );
  let closing: Promise<void> | undefined;
  return {
    url,
    master,
    runner,
    close: () => {
      closing ??= (async () => {
        await app.close();
        runner.close();
      })();
      return closing;
    },
  };
}
