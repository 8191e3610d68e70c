// Launches each placement on the launcher of the offer source it was placed on: the partner of
// the composite offer source (src/offer-adapter/composite.ts), whose host names say which member
// a node belongs to. `launchers[i]` serves the composite's member i.
//
// The controller prepares a launch before it knows the node, so `prepare` is the first
// launcher's (a launch id and, for the local launcher, an attempt directory); every other member
// launcher must accept a record prepared that way (the Mesos launcher uses only its launch id).
import type { CompositeOfferSource } from '../offer-adapter/composite.ts';
import { taskIdOf } from './kubernetes-pod.ts';
import type { AttemptKey, Launcher, LaunchRecord, LaunchRequest } from './types.ts';

export class RoutingLauncher implements Launcher {
  private readonly offers: CompositeOfferSource;
  private readonly launchers: Launcher[];

  constructor(offers: CompositeOfferSource, launchers: Launcher[]) {
    if (launchers.length === 0) throw new Error('a routing launcher needs at least one launcher');
    this.offers = offers;
    this.launchers = launchers;
  }

  private route(record: LaunchRecord): Launcher {
    const { index } = this.offers.memberOf(record.node);
    const l = this.launchers[index];
    if (!l) throw new Error(`no launcher for the offer source of node ${JSON.stringify(record.node)}`);
    return l;
  }

  prepare(req: LaunchRequest): LaunchRecord {
    return this.launchers[0]!.prepare(req);
  }

  launch(req: LaunchRequest, record: LaunchRecord): void {
    const l = this.route(record);
    this.offers.bind(taskIdOf(req), record.node);
    l.launch(req, record);
  }

  adopt(key: AttemptKey, record: LaunchRecord, req: LaunchRequest): void {
    const l = this.route(record);
    this.offers.bind(taskIdOf(key), record.node);
    l.adopt(key, record, req);
  }

  kill(key: AttemptKey, record: LaunchRecord): void {
    this.route(record).kill(key, record);
  }

  /** Every member is told: each frees only what it kept for the attempt, if anything. */
  settled(key: AttemptKey): void {
    for (const l of this.launchers) l.settled?.(key);
  }

  close(): void {
    for (const l of this.launchers) l.close();
  }
}
