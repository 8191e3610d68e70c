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
import { MESOS_FRAMEWORK_LABEL, PodTaskRunner } from '../mesos-compat/pod-runner.ts';
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
  /** Annotations on every task Pod (--pod-annotation; system keys win). */
  annotations?: Record<string, string>;
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
 * yet (the runner listens to it).
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
    ...(config.annotations ? { annotations: config.annotations } : {}),
    capacity: offers,
    logger,
    client: {
      // within the step launcher's requests in flight (--pod-concurrency), shared with step Pods
      create: async (namespace, body) => {
        await launcher.slot(() => core.createNamespacedPod({ namespace, body }));
      },
      delete: async (namespace, name) => {
        await launcher.slot(() => core.deleteNamespacedPod({ name, namespace }));
      },
      cached: (namespace, name) => launcher.cachedPod(namespace, name),
    },
  });
  launcher.addPodListener(runner);
  return runner;
}

/**
 * Deletes the task Pods a previous leader left: a new leader knows no framework's tasks (the
 * endpoint keeps its state in memory), so they would run on unseen, holding capacity, while their
 * frameworks hear TASK_LOST when they reconcile and launch them again.
 */
export async function removeOrphanTaskPods(
  kc: KubeConfig,
  namespace: string,
  logger: MesosEndpointLogger,
): Promise<number> {
  const core = kc.makeApiClient(CoreV1Api);
  const pods = await core.listNamespacedPod({ namespace, labelSelector: MESOS_FRAMEWORK_LABEL });
  let n = 0;
  for (const p of pods.items) {
    const name = p.metadata?.name;
    if (!name) continue;
    await core.deleteNamespacedPod({ name, namespace }).then(
      () => n++,
      (err: unknown) => {
        if ((err as { code?: number }).code !== 404)
          logger.warn(
            { pod: `${namespace}/${name}`, err: String(err) },
            'could not delete an orphan task pod',
          );
      },
    );
  }
  if (n > 0)
    logger.info(
      { namespace, pods: n },
      'deleted the task pods of the previous leader (their tasks are lost)',
    );
  return n;
}

/** Starts serving (after removing a previous leader's task Pods); resolves once listening. */
export async function startMesosEndpoint(opts: {
  kc: KubeConfig;
  config: MesosEndpointConfig;
  offers: KubernetesOfferSource;
  runner: PodTaskRunner;
  /** Namespaces with steps queued at the run controller's last pass. */
  queuedNamespaces: () => readonly string[];
  logger: MesosEndpointLogger;
}): Promise<RunningMesosEndpoint> {
  const { config, offers, runner, logger } = opts;
  await removeOrphanTaskPods(opts.kc, config.namespace, logger);
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
      taskNamespace: config.namespace,
      queuedNamespaces: opts.queuedNamespaces,
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
