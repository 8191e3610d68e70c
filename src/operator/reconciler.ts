// The operator's reconciler: the run controller and the workflow services of the standalone
// server, on the Kubernetes ports: the custom resources as the store (src/store/kubernetes.ts),
// node capacity as offers (src/offer-adapter/kubernetes.ts) and one Pod per step attempt
// (src/launchers/kubernetes.ts). The operator process runs it while it holds the Lease and stops
// it when it steps down; a new leader adopts the running Pods from the launch records in the
// store (a Pod's name derives from its launch record, so an adopted attempt never gets a second
// Pod). Runs get Kubernetes Events when they start and finish (./events.ts). With
// --mesos-master, `wrapSources` joins a Mesos master's offers and launcher to the nodes'
// (./mesos-master.ts), so the subscription too lives only while this process leads.
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { Controller, type ControllerObserver, type Logger, type RunHooks } from '../controller/controller.ts';
import type { PreemptionSettings } from '../controller/preemption.ts';
import type { ControllerCallbacks, Sources } from '../controller/standalone.ts';
import { WorkflowServices, type WorkflowServicesDeps } from '../controller/workflows.ts';
import { KubernetesLauncher } from '../launchers/kubernetes.ts';
import type { PodTemplateOptions } from '../launchers/kubernetes-pod.ts';
import { KubernetesOfferSource, trimPodForCapacity } from '../offer-adapter/kubernetes.ts';
import { KubernetesStore, type KubernetesStoreLimits } from '../store/kubernetes.ts';
import { EVENT_COMPONENT, RunEvents } from './events.ts';
import {
  type MesosEndpointConfig,
  mesosEndpointRunner,
  type RunningMesosEndpoint,
  startMesosEndpoint,
} from './mesos-endpoint.ts';
import { POD_GC_SWEEP_MS, PodGarbageCollector, type PodGcPolicy, perPod } from './pod-gc.ts';

/**
 * The operator's default `--status-interval` (ms): a run's observed progress (attempts launched,
 * running, ended) and its status are written at most about once a second, not once a pass. In a
 * 10,000-way foreach the passes come back to back, and each wrote the run's status and the
 * shards it touched: about 0.6 writes of 30 KB objects per step, sharing the API server with the
 * Pod creates (docs/performance.md). Phase changes, launches' task records and the run's end are
 * never held.
 */
export const DEFAULT_STATUS_INTERVAL_MS = 1000;

/**
 * How long a new run waits for its Workflow to reach the cache before it fails with "not found".
 * Each kind has its own watch, so a run created right after its Workflow (one `kubectl apply` of
 * a file holding both) can arrive first; the watches deliver within milliseconds, seconds on a
 * loaded API server.
 */
export const MISSING_WORKFLOW_GRACE_MS = 10_000;

export interface ReconcilerConfig {
  kc: KubeConfig;
  /** Namespaces whose runs are reconciled; empty: all. */
  namespaces: string[];
  /** Where the store keeps its state ConfigMaps (cron cursors, fired triggers). */
  stateNamespace: string;
  logger: Logger;
  /** Step Pods: executor image, extra labels and annotations, security context. */
  pods?: PodTemplateOptions;
  storeLimits?: Partial<KubernetesStoreLimits>;
  now?: () => number;
  /** This replica's name in the Events it records (default meson-operator). */
  identity?: string;
  /** Reports of the run controller's work (the operator's /metrics). */
  observer?: ControllerObserver;
  /** Concurrent Pod create/delete requests (default the launcher's, 64). */
  podConcurrency?: number;
  /** Webhook notifications: the allow-list of private targets and the pending bound. */
  webhook?: WorkflowServicesDeps['webhook'];
  /** Serve the Mesos scheduler endpoint (its tasks as Pods on the same node capacity); absent: off. */
  mesosEndpoint?: MesosEndpointConfig;
  /** Deletion of finished step Pods (--pod-gc; default Never). */
  podGc?: PodGcPolicy;
  /** With a per-Pod policy: how long a finished Pod stays before it is deleted (--pod-gc-delay). */
  podGcDelayMs?: number;
  /** The admin's preemption settings (src/controller/preemption.ts); absent: off. */
  preemption?: PreemptionSettings;
  /**
   * Minimum ms between two writes of a running run's observed progress (ControllerDeps.
   * statusIntervalMs; --status-interval). Default DEFAULT_STATUS_INTERVAL_MS.
   */
  statusIntervalMs?: number;
  /**
   * Other offer sources and launchers joined to the nodes' (--mesos-master: ./mesos-master.ts),
   * started before the controller and stopped after it, so they live while this process leads.
   */
  wrapSources?: (
    nodes: { offers: KubernetesOfferSource; launcher: KubernetesLauncher; store: KubernetesStore },
    controller: ControllerCallbacks,
  ) => Sources;
}

export interface Reconciler {
  store: KubernetesStore;
  controller: Controller;
  services: WorkflowServices;
  /** The Mesos scheduler endpoint, when configured. */
  mesos?: RunningMesosEndpoint;
  /** Stops reconciling (running Pods keep running) and closes the informers. */
  stop(): Promise<void>;
}

/** Starts the informers, then the controllers; resolves once all caches hold their first list. */
export async function startReconciler(cfg: ReconcilerConfig): Promise<Reconciler> {
  const { logger } = cfg;
  const now = cfg.now ?? Date.now;
  const store = await KubernetesStore.open({
    kubeConfig: cfg.kc,
    ...(cfg.namespaces.length > 0 ? { namespaces: cfg.namespaces } : {}),
    stateNamespace: cfg.stateNamespace,
    ...(cfg.storeLimits ? { limits: cfg.storeLimits } : {}),
    log: (message, fields) => logger.warn({ ...fields, component: 'store' }, message),
  });
  // a step may ask for nodes (or, with --mesos-master, for Mesos agents) by this attribute
  // one watch of the step Pods, not two: the launcher's informer also feeds the offer source,
  // which then watches only the other Pods (and Meson's Pods of the namespaces not served here)
  const launcherNamespaces =
    cfg.namespaces.length > 0
      ? [...cfg.namespaces, ...(cfg.mesosEndpoint ? [cfg.mesosEndpoint.namespace] : [])]
      : undefined;
  const offers = new KubernetesOfferSource({
    kubeConfig: cfg.kc,
    logger,
    attributes: { 'meson.dev/source': 'kubernetes' },
    stepPodsFromLauncher: launcherNamespaces ?? 'all',
  });
  let controller: Controller | undefined;
  const prefix = randomBytes(3).toString('hex');
  let seq = 0;
  const launcher = new KubernetesLauncher({
    ...cfg.pods,
    kubeConfig: cfg.kc,
    onUpdate: (u) => controller?.onAttemptUpdate(u),
    newLaunchId: () => `${prefix}${(++seq).toString(36)}`,
    now,
    logger,
    ...(cfg.podConcurrency ? { maxInFlight: cfg.podConcurrency } : {}),
    ...(cfg.podGc && perPod(cfg.podGc)
      ? { finishedPodGc: { succeededOnly: cfg.podGc === 'OnPodSuccess', delayMs: cfg.podGcDelayMs ?? 0 } }
      : {}),
    alsoKeep: trimPodForCapacity,
    // only the served namespaces' step Pods (and the endpoint's task Pods), not the cluster's
    ...(launcherNamespaces ? { namespaces: launcherNamespaces } : {}),
  });
  launcher.addPodListener(offers.stepPodListener());
  // the endpoint's task Pods come from the launcher's informer: listen before it starts
  const mesosRunner = cfg.mesosEndpoint
    ? mesosEndpointRunner(cfg.mesosEndpoint, cfg.kc, offers, launcher, logger)
    : undefined;
  let queuedNamespaces: readonly string[] = [];
  try {
    // offers before the first pass (nothing is placed on an empty view), and the Pod informer
    // before adoption (an adopted attempt whose Pod exists is watched, not created)
    await Promise.all([offers.start(), launcher.start()]);
  } catch (err) {
    offers.stop();
    launcher.close();
    await store.close();
    throw err;
  }
  // webhook deliveries are state ConfigMaps, resumed by the next leader (src/notify/queue.ts)
  const services = new WorkflowServices({
    store,
    notifyStore: store,
    now,
    logger,
    ...(cfg.webhook ? { webhook: cfg.webhook } : {}),
  });
  const events = new RunEvents({ kc: cfg.kc, logger, now, instance: cfg.identity ?? EVENT_COMPONENT });
  const podGc = new PodGarbageCollector(cfg.podGc ?? 'Never', {
    deleteRunPods: (namespace, uid, which) => launcher.deleteRunPods(namespace, uid, which),
    // the launcher sees step Pods of every namespace; only served ones are this operator's
    getRun: (namespace, name) =>
      cfg.namespaces.length === 0 || cfg.namespaces.includes(namespace)
        ? store.get('WorkflowRun', namespace, name)
        : undefined,
    runsWithPods: () => launcher.runsWithPods(),
    logger,
  });
  const hooks: RunHooks = {
    admit: (run, running, write) => services.admit(run, running, write),
    runStarted: (run) => events.runStarted(run),
    stepPreempted: (run, p) => events.stepPreempted(run, p),
    runFinished: (run) => {
      services.runFinished(run);
      events.runFinished(run);
      podGc.runFinished(run);
    },
  };
  const sources: Sources = cfg.wrapSources
    ? cfg.wrapSources(
        { offers, launcher, store },
        { onUpdate: (u) => controller?.onAttemptUpdate(u), offersChanged: () => controller?.offersChanged() },
      )
    : { offers, launcher };
  const ctl = new Controller({
    store,
    launcher: sources.launcher,
    offers: sources.offers,
    // the queue's size after a pass: the Mesos master's REVIVE/SUPPRESS (--mesos-master) and
    // the endpoint's fairness between frameworks and steps (--mesos-endpoint), both when both
    onQueued: (n: number, namespaces: readonly string[]) => {
      queuedNamespaces = namespaces;
      sources.onQueued?.(n);
    },
    now,
    logger,
    hooks,
    ...(cfg.observer ? { observer: cfg.observer } : {}),
    ...(cfg.preemption ? { preemption: cfg.preemption } : {}),
    statusIntervalMs: cfg.statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS,
    missingWorkflowGraceMs: MISSING_WORKFLOW_GRACE_MS,
  });
  controller = ctl;
  sources.start?.();
  services.start(ctl);
  ctl.start();
  let mesos: RunningMesosEndpoint | undefined;
  if (cfg.mesosEndpoint && mesosRunner) {
    try {
      mesos = await startMesosEndpoint({
        kc: cfg.kc,
        config: cfg.mesosEndpoint,
        offers,
        runner: mesosRunner,
        queuedNamespaces: () => queuedNamespaces,
        logger,
      });
    } catch (err) {
      services.stop();
      ctl.stop();
      offers.stop();
      await store.close();
      throw err;
    }
  }
  // runs that finished under an earlier leader, or whose delete failed
  podGc.sweep();
  const sweeper = setInterval(() => podGc.sweep(), POD_GC_SWEEP_MS).unref();
  let stopping: Promise<void> | undefined;
  return {
    store,
    controller: ctl,
    services,
    ...(mesos ? { mesos } : {}),
    stop: () => {
      stopping ??= (async () => {
        await mesos?.close();
        clearInterval(sweeper);
        services.stop();
        ctl.stop(); // closes the launcher
        offers.stop();
        await Promise.resolve(sources.stop?.()).catch((err: unknown) =>
          logger.warn({ err: (err as Error).message }, 'stopping the offer sources failed'),
        );
        await store.close();
      })();
      return stopping;
    },
  };
}
