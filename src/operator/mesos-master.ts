// `mesonctl operator --mesos-master URL`: on the leader, a Mesos master's offers join the nodes'
// in one scheduler pass (src/launchers/mesos-wiring.ts: composite offer source, routing
// launcher), so a placement on a node is a Pod and a placement on `mesos/<agent>` is a Mesos
// task. The reconciler builds this around its node offers and Pod launcher (its `wrapSources`),
// so the subscription lives exactly as long as the reconciler: it starts when this process takes
// the Lease and stops (without TEARDOWN: the framework and its tasks stay for the failover
// timeout) when it steps down. The framework id is a state entry of the operator's store (a
// ConfigMap in the state namespace), so the next leader, or this one restarted, subscribes as
// the same framework and adopts its running tasks.
import type { MesosServerOptions } from '../cli/mesos-options.ts';
import type { ControllerCallbacks, Sources } from '../controller/standalone.ts';
import type { KubernetesLauncher } from '../launchers/kubernetes.ts';
import { withMesos } from '../launchers/mesos-wiring.ts';
import type { KubernetesOfferSource } from '../offer-adapter/kubernetes.ts';
import type { FrameworkIdStore } from '../offer-adapter/mesos-source.ts';
import type { AsyncStore } from '../store/port.ts';

/** The state key of the framework id (its ConfigMap: meson-state-<sha256 of the key>). */
export const FRAMEWORK_ID_STATE_KEY = 'mesos/framework-id';

/** What the state entry holds: the id, and for a reader, the master and name it was given for. */
export interface FrameworkIdState {
  id: string;
  master?: string;
  name?: string;
}

/** A framework id as the master hands it out: printable ASCII, bounded (MESOS_LIMITS ids). */
const FRAMEWORK_ID = /^[\x21-\x7e]{1,256}$/;

/**
 * The framework id in the operator's store (state entry FRAMEWORK_ID_STATE_KEY), so that every
 * leader subscribes as the same framework. A value that is not an id is ignored (a fresh
 * framework is better than a refused subscription); an unchanged id is not written again.
 */
export class StateFrameworkIdStore implements FrameworkIdStore {
  private readonly store: Pick<AsyncStore, 'getState' | 'transaction'>;
  private readonly about: Omit<FrameworkIdState, 'id'>;
  private readonly key: string;
  constructor(
    store: Pick<AsyncStore, 'getState' | 'transaction'>,
    about: Omit<FrameworkIdState, 'id'> = {},
    key = FRAMEWORK_ID_STATE_KEY,
  ) {
    this.store = store;
    this.about = about;
    this.key = key;
  }

  async load(): Promise<string | undefined> {
    const v = this.store.getState<unknown>(this.key);
    const id = typeof v === 'object' && v !== null ? (v as { id?: unknown }).id : undefined;
    return typeof id === 'string' && FRAMEWORK_ID.test(id) ? id : undefined;
  }

  async save(id: string): Promise<void> {
    if ((await this.load()) === id) return;
    const value: FrameworkIdState = { id, ...this.about };
    await this.store.transaction((w) => w.setState(this.key, value));
  }
}

export interface NodeSources {
  offers: KubernetesOfferSource;
  launcher: KubernetesLauncher;
  store: Pick<AsyncStore, 'getState' | 'transaction'>;
}

/** The reconciler's `wrapSources` for --mesos-master: nodes + the master's agents. */
export function mesosMasterSources(
  mesos: MesosServerOptions,
  logger: { info(o: object, m: string): void; warn(o: object, m: string): void },
): (nodes: NodeSources, ctl: ControllerCallbacks) => Sources {
  return (nodes, ctl) => {
    const m = withMesos({
      ...mesos,
      primary: nodes.offers,
      primaryLauncher: nodes.launcher,
      frameworkStore: new StateFrameworkIdStore(nodes.store, {
        master: mesos.master,
        ...(mesos.framework?.name ? { name: mesos.framework.name } : {}),
      }),
      onUpdate: ctl.onUpdate,
      poke: ctl.offersChanged,
      log: (msg, fields) => logger.warn({ ...fields, master: mesos.master }, msg),
    });
    return {
      offers: m.offers,
      launcher: m.launcher,
      onQueued: (n) => m.demand(n),
      start: () => {
        logger.info(
          { master: mesos.master, framework: mesos.framework ?? {} },
          'subscribing to the Mesos master: steps run on nodes and on its agents',
        );
        m.start();
      },
      // no TEARDOWN: the master keeps the framework's tasks for the next leader
      stop: () => m.stop(),
    };
  };
}
