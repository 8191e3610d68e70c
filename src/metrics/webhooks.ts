// Webhook notification deliveries (src/notify/queue.ts): by outcome, their latency from queued
// to delivered (or given up), each HTTP attempt's duration, and what is pending. No label names
// a URL, run or workflow: the outcome is the only label, so cardinality is fixed.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DeliveryObserver } from '../notify/queue.ts';

export function webhookMetrics(registry: Registry): DeliveryObserver {
  const deliveries = new Counter({
    name: 'meson_webhook_deliveries_total',
    help:
      'Webhook notification deliveries by outcome: delivered, failed (given up), retried (an attempt ' +
      'failed, another is scheduled), dropped (not queued: the queue was full or its write failed).',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  for (const outcome of ['delivered', 'failed', 'retried', 'dropped']) deliveries.inc({ outcome }, 0);
  const latency = new Histogram({
    name: 'meson_webhook_delivery_seconds',
    help: 'Time from queueing a delivery to its end (retries included), by outcome: delivered or failed.',
    labelNames: ['outcome'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
    registers: [registry],
  });
  const attempt = new Histogram({
    name: 'meson_webhook_attempt_duration_seconds',
    help: 'Duration of one HTTP delivery attempt (address checks, connection, response).',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const pending = new Gauge({
    name: 'meson_webhook_pending',
    help: 'Deliveries this process holds: waiting for an attempt or a retry (bound MESON_WEBHOOK_MAX_PENDING).',
    registers: [registry],
  });
  return {
    delivery(outcome, timing) {
      deliveries.inc({ outcome });
      if (timing.attemptSeconds !== undefined) attempt.observe(timing.attemptSeconds);
      if (timing.seconds !== undefined && (outcome === 'delivered' || outcome === 'failed'))
        latency.observe({ outcome }, timing.seconds);
    },
    pending(count) {
      pending.set(count);
    },
  };
}
