// The operator's /metrics on its health server (--api-listen): the metrics of src/metrics/index.ts
// (runs, steps, scheduling, webhook deliveries, process) plus leadership. The run controller and
// the webhook queue run on the leader only, so a follower's run counters stay where they were
// (zero, unless it led before) and its gauges have no series: sums over replicas count once.
import { Gauge } from 'prom-client';
import { createMetrics, type Metrics, type MetricsOptions } from './index.ts';

export interface OperatorMetricsOptions extends Omit<MetricsOptions, 'clock'> {
  /** 1 while this process holds the Lease (or runs without leader election). */
  isLeader: () => boolean;
}

export function createOperatorMetrics(opts: OperatorMetricsOptions): Metrics {
  const { isLeader, ...rest } = opts;
  const metrics = createMetrics(rest);
  new Gauge({
    name: 'meson_operator_leader',
    help: 'Whether this operator process leads (holds the Lease): 1 or 0.',
    registers: [metrics.registry],
    collect() {
      this.set(isLeader() ? 1 : 0);
    },
  });
  return metrics;
}
