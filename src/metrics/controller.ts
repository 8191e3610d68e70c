// The run controller's own metrics: scheduling passes, offers by source, time in queue,
// placements, failed commits. The controller reports them through its ControllerObserver port;
// labels are the offer source (local, kubernetes, mesos) and, for preemptions, the victim's
// namespace (as many as the admin's preemption settings enable), so cardinality stays bounded.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ControllerObserver } from '../controller/controller.ts';

export function controllerMetrics(
  registry: Registry,
): Pick<ControllerObserver, 'schedulingPass' | 'taskPlaced' | 'commitFailed' | 'stepPreempted'> {
  const passDuration = new Histogram({
    name: 'meson_scheduler_pass_duration_seconds',
    help: 'Duration of one scheduling pass (placing the queued tasks on the current offers).',
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const placements = new Counter({
    name: 'meson_scheduler_placements_total',
    help: 'Tasks (step attempts) placed on an offer.',
    registers: [registry],
  });
  const unplaced = new Gauge({
    name: 'meson_scheduler_unplaced_tasks',
    help: 'Tasks the last scheduling pass could not place (why: the controller log, or whyQueued).',
    registers: [registry],
  });
  const offers = new Gauge({
    name: 'meson_offers',
    help: 'Offers seen by the last scheduling pass, by source.',
    labelNames: ['source'] as const,
    registers: [registry],
  });
  const queueTime = new Histogram({
    name: 'meson_step_queue_seconds',
    help: 'Time a step attempt waited in the queue before it was placed.',
    buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [registry],
  });
  const commitFailures = new Counter({
    name: 'meson_reconcile_errors_total',
    help: "Failed commits of a run's writes (the run is retried with backoff, then quarantined).",
    registers: [registry],
  });
  const preemptions = new Counter({
    name: 'meson_step_preemptions_total',
    help: 'Running step attempts evicted for a higher-tier task, by the namespace of the victim.',
    labelNames: ['namespace'] as const,
    registers: [registry],
  });
  const sources = new Set<string>();
  return {
    schedulingPass(o) {
      passDuration.observe(o.seconds);
      placements.inc(o.placed);
      unplaced.set(o.unplaced);
      for (const s of sources) if (!(s in o.offers)) offers.set({ source: s }, 0);
      for (const [source, n] of Object.entries(o.offers)) {
        sources.add(source);
        offers.set({ source }, n);
      }
    },
    taskPlaced(seconds) {
      queueTime.observe(seconds);
    },
    commitFailed() {
      commitFailures.inc();
    },
    stepPreempted({ namespace }) {
      preemptions.inc({ namespace });
    },
  };
}
