// A Mesos master joined to another offer source and its launcher (local + Mesos, Kubernetes +
// Mesos): one composite offer source and one routing launcher for the controller.
//
//   const m = withMesos({ primary: localOffers, primaryLauncher: localLauncher, master, ... });
//   new Controller({ offers: m.offers, launcher: m.launcher, onQueued: m.demand, ... }); m.start();
//
// `poke` is called when Mesos offers arrive or go, and after each subscription, so that queued
// tasks meet them: pass the controller's `offersChanged`. Give `demand` to the controller's
// `onQueued`, so that offers are suppressed while nothing waits.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { OfferSource } from '../controller/controller.ts';
import { CompositeOfferSource } from '../offer-adapter/composite.ts';
import { MesosOfferPool, type MesosOfferPoolOptions } from '../offer-adapter/mesos-pool.ts';
import {
  type FrameworkIdStore,
  MesosMasterSource,
  type MesosSourceOptions,
} from '../offer-adapter/mesos-source.ts';
import { MesosLauncher, type MesosLauncherOptions } from './mesos.ts';
import { RoutingLauncher } from './routing.ts';
import type { AttemptUpdate, Launcher } from './types.ts';

/** The framework id in a file (the server's data directory), so a restart is the same framework. */
export class FileFrameworkIdStore implements FrameworkIdStore {
  private readonly file: string;
  constructor(file: string) {
    this.file = file;
  }
  async load(): Promise<string | undefined> {
    try {
      const id = readFileSync(this.file, 'utf8').trim();
      return /^[\x21-\x7e]{1,256}$/.test(id) ? id : undefined;
    } catch {
      return undefined;
    }
  }
  async save(id: string): Promise<void> {
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, `${id}\n`);
    renameSync(tmp, this.file);
  }
}

export interface WithMesosOptions {
  primary: OfferSource;
  primaryLauncher: Launcher;
  /** http://host:port of a Mesos master. */
  master: string;
  frameworkStore: FrameworkIdStore;
  /** The controller's onAttemptUpdate. */
  onUpdate: (u: AttemptUpdate) => void;
  /** Mesos offers changed: run a scheduling pass (see the file comment). */
  poke?: () => void;
  framework?: { name?: string; user?: string; failoverTimeoutSeconds?: number; role?: string };
  pool?: Omit<MesosOfferPoolOptions, 'client'>;
  launcher?: Omit<MesosLauncherOptions, 'pool' | 'onUpdate' | 'host'>;
  source?: Partial<Omit<MesosSourceOptions, 'master' | 'frameworkInfo' | 'store' | 'onUpdate' | 'onOffers'>>;
  log?: (msg: string, fields?: object) => void;
}

export interface MesosWiring {
  offers: CompositeOfferSource;
  launcher: RoutingLauncher;
  client: MesosMasterSource;
  pool: MesosOfferPool;
  mesosLauncher: MesosLauncher;
  /**
   * The controller's queue after a pass (its onQueued): SUPPRESS at 0, REVIVE when work arrives.
   * Not sent while unsubscribed; the pass after the subscription says it.
   */
  demand(queued: number): void;
  start(): void;
  stop(): Promise<void>;
}

export const MESOS_FRAMEWORK_DEFAULTS = {
  name: 'meson',
  user: 'nobody',
  /** A week: a server down for less comes back to its running tasks. */
  failoverTimeoutSeconds: 7 * 24 * 3600,
} as const;

export function withMesos(opts: WithMesosOptions): MesosWiring {
  let launcherRef: MesosLauncher | undefined;
  const fw = { ...MESOS_FRAMEWORK_DEFAULTS, ...opts.framework };
  const client = new MesosMasterSource({
    ...opts.source,
    master: opts.master,
    frameworkInfo: {
      name: fw.name,
      user: fw.user,
      failover_timeout: fw.failoverTimeoutSeconds,
      checkpoint: true,
      ...(opts.framework?.role ? { role: opts.framework.role } : {}),
    },
    store: opts.frameworkStore,
    onUpdate: (s) => launcherRef?.onStatus(s),
    onOffers: () => opts.poke?.(),
    // the master forgot an earlier SUPPRESS: a pass tells the pool again what the queue needs
    onSubscribed: () => {
      pool.subscribed();
      opts.poke?.();
    },
    knownTasks: () => launcherRef?.knownTasks() ?? [],
    ...(opts.log ? { log: opts.log } : {}),
  });
  const pool = new MesosOfferPool({ ...opts.pool, client, ...(opts.log ? { log: opts.log } : {}) });
  const offers = new CompositeOfferSource([{ source: opts.primary }, { source: pool }]);
  const mesosLauncher = new MesosLauncher({
    ...opts.launcher,
    pool,
    onUpdate: opts.onUpdate,
    host: (node) => offers.memberOf(node).host,
    ...(opts.log ? { log: opts.log } : {}),
  });
  launcherRef = mesosLauncher;
  const launcher = new RoutingLauncher(offers, [opts.primaryLauncher, mesosLauncher]);
  return {
    offers,
    launcher,
    client,
    pool,
    mesosLauncher,
    demand(queued) {
      if (client.connected) pool.demand(queued);
    },
    start() {
      client.start();
      pool.start();
    },
    async stop() {
      pool.stop();
      await client.stop();
    },
  };
}
