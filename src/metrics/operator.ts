// The operator's /metrics on its health server (--api-listen): process metrics, leadership and
// the run controller's scheduling (src/metrics/controller.ts).
// Like /healthz and /readyz there, it is unauthenticated: it names no namespace, workflow or run.
// The run metrics (src/metrics/index.ts) join it with the run controller and its Store.
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { ControllerObserver } from '../controller/controller.ts';
import { controllerMetrics } from './controller.ts';

export interface OperatorMetricsOptions {
  /** 1 while this process holds the Lease (or runs without leader election). */
  isLeader: () => boolean;
  /** Register prom-client's process metrics (default true). */
  processMetrics?: boolean;
}

export function createOperatorMetrics(opts: OperatorMetricsOptions): {
  registry: Registry;
  controller: ControllerObserver;
} {
  const registry = new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'meson_' });
  new Gauge({
    name: 'meson_operator_leader',
    help: 'Whether this operator process leads (holds the Lease): 1 or 0.',
    registers: [registry],
    collect() {
      this.set(opts.isLeader() ? 1 : 0);
    },
  });
  return { registry, controller: controllerMetrics(registry) };
}
