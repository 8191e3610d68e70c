import { KubeConfig } from '@kubernetes/client-node';
import type { FastifyBaseLogger } from 'fastify';
import { describe, expect, it } from 'vitest';
import { Leadership } from './process.ts';
import type { Reconciler, ReconcilerConfig } from './reconciler.ts';

const logger = { info() {}, warn() {}, error() {}, debug() {} } as unknown as FastifyBaseLogger;

/** A reconciler start that resolves when told, recording controller and reconciler stops. */
function fakeStart() {
  const log: string[] = [];
  const pending: ((r: Reconciler) => void)[] = [];
  let fail = 0;
  const make = (n: number): Reconciler =>
    ({
      controller: { stop: () => log.push(`controller.stop ${n}`) },
      stop: async () => {
        log.push(`stop ${n}`);
      },
    }) as unknown as Reconciler;
  let n = 0;
  const start = (_cfg: ReconcilerConfig): Promise<Reconciler> => {
    log.push('start');
    if (fail > 0) {
      fail--;
      return Promise.reject(new Error('informers cannot list'));
    }
    const id = ++n;
    return new Promise((resolve) => pending.push(() => resolve(make(id))));
  };
  return {
    log,
    start,
    resolveNext: () => pending.shift()?.(undefined as never),
    failNext: (k: number) => {
      fail = k;
    },
  };
}

const config = {
  kc: new KubeConfig(),
  namespaces: [],
  logger,
  reconcile: { stateNamespace: 'meson-system' },
};

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('Leadership', () => {
  it('reconciles only between taking and losing the Lease; the controller stops synchronously', async () => {
    const f = fakeStart();
    const l = new Leadership(config, f.start as never);
    expect(l.describe()).toBe('not started: standing by');
    l.begin();
    expect(l.describe()).toBe('starting: listing objects');
    f.resolveNext();
    await tick();
    expect(l.describe()).toBe('synced: reconciling');
    expect(l.reconciler).toBeDefined();
    const ended = l.end();
    expect(f.log).toContain('controller.stop 1'); // before any await
    await ended;
    expect(f.log).toEqual(['start', 'controller.stop 1', 'stop 1']);
    expect(l.reconciler).toBeUndefined();
  });

  it('stops a reconciler that finished starting after leadership ended, and never keeps it', async () => {
    const f = fakeStart();
    const l = new Leadership(config, f.start as never);
    l.begin();
    const ended = l.end();
    f.resolveNext();
    await ended;
    await tick();
    expect(f.log).toEqual(['start', 'stop 1']);
    expect(l.reconciler).toBeUndefined();
    expect(l.describe()).toBe('not started: standing by');
  });

  it('retries a start that fails while it still leads', async () => {
    const f = fakeStart();
    f.failNext(1);
    const l = new Leadership(config, f.start as never);
    l.begin();
    await new Promise((r) => setTimeout(r, 600)); // first backoff: 500 ms
    f.resolveNext();
    await tick();
    expect(f.log).toEqual(['start', 'start']);
    expect(l.describe()).toBe('synced: reconciling');
    await l.end();
  });
});
