// Our master-compatible endpoint standing in for a Mesos master in end-to-end tests, with a
// LocalTaskRunner that really runs each task's command in a sandbox under `root`.
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { LocalTaskRunner } from '../../src/mesos-compat/local-runner.ts';
import { createMesosMasterServer, type LaunchedTask, MesosMaster } from '../../src/mesos-compat/master.ts';
import { host, StaticOfferSource } from '../../src/mesos-compat/test-helpers.ts';
import type { Offer } from '../../src/offer-adapter/types.ts';

export async function startEndpoint(
  root: string,
  cleanups: (() => Promise<void> | void)[],
  opts: { maxDataBytes?: number; hosts?: Offer[] } = {},
): Promise<{
  master: MesosMaster;
  runner: LocalTaskRunner;
  url: string;
  launched: LaunchedTask[];
  /** Every SUBSCRIBE the endpoint took, in order. */
  subscriptions: { frameworkId: string; resubscribed: boolean }[];
}> {
  const runner = new LocalTaskRunner({
    sandboxRoot: join(root, 'agent'),
    ...(opts.maxDataBytes ? { maxDataBytes: opts.maxDataBytes } : {}),
  });
  cleanups.push(() => runner.close());
  // every task the runner was given, in order: tests count launches per step by its labels
  const launched: LaunchedTask[] = [];
  const subscriptions: { frameworkId: string; resubscribed: boolean }[] = [];
  const master = new MesosMaster({
    offers: new StaticOfferSource(opts.hosts ?? [host('agent-1', 4000)]),
    runner: {
      launch: (t, report) => {
        launched.push(t);
        runner.launch(t, report);
      },
      kill: (frameworkId, taskId) => runner.kill(frameworkId, taskId),
    },
    logger: {
      info: (o, msg) => {
        if (msg === 'mesos framework subscribed') subscriptions.push(o as (typeof subscriptions)[number]);
      },
      warn: () => {},
    },
    heartbeatIntervalSeconds: 0.5,
    allocationIntervalMs: 20,
  });
  const app = createMesosMasterServer(master);
  await app.listen({ host: '127.0.0.1', port: 0 });
  master.start();
  cleanups.push(async () => {
    master.stop();
    await app.close();
  });
  return {
    master,
    runner,
    launched,
    subscriptions,
    url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
  };
}
