import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startOperator } from '../operator/process.ts';
import { createOperatorMetrics } from './operator.ts';

describe('operator metrics', () => {
  it('reports leadership at scrape time', async () => {
    let leading = false;
    const { registry } = createOperatorMetrics({ isLeader: () => leading, processMetrics: false });
    expect(await registry.metrics()).toContain('meson_operator_leader 0');
    leading = true;
    expect(await registry.metrics()).toContain('meson_operator_leader 1');
  });

  it("reports the controller's scheduling: pass durations, placements, offers by source, queue time, failed commits, preemptions", async () => {
    const { registry, controller } = createOperatorMetrics({ isLeader: () => true, processMetrics: false });
    controller.schedulingPass({
      seconds: 0.002,
      offers: { kubernetes: 3, mesos: 1 },
      placed: 2,
      unplaced: 1,
    });
    controller.taskPlaced(0.3);
    controller.taskPlaced(4);
    controller.commitFailed();
    controller.stepPreempted?.({ namespace: 'batch', victimTier: 5, preemptorTier: 0 });
    controller.stepPreempted?.({ namespace: 'batch', victimTier: 3, preemptorTier: 0 });
    let text = await registry.metrics();
    expect(text).toContain('meson_scheduler_placements_total 2');
    expect(text).toContain('meson_scheduler_pass_duration_seconds_count 1');
    expect(text).toContain('meson_scheduler_unplaced_tasks 1');
    expect(text).toContain('meson_offers{source="kubernetes"} 3');
    expect(text).toContain('meson_offers{source="mesos"} 1');
    expect(text).toContain('meson_step_queue_seconds_count 2');
    expect(text).toContain('meson_step_queue_seconds_bucket{le="0.5"} 1');
    expect(text).toContain('meson_reconcile_errors_total 1');
    expect(text).toContain('meson_step_preemptions_total{namespace="batch"} 2');
    // a source that offers nothing in a later pass reads 0, not its last count
    controller.schedulingPass({ seconds: 0.001, offers: { kubernetes: 2 }, placed: 0, unplaced: 0 });
    text = await registry.metrics();
    expect(text).toContain('meson_offers{source="mesos"} 0');
    expect(text).toContain('meson_scheduler_placements_total 2');
  });

  it('is served at /metrics on the running operator health server (one real scrape)', async () => {
    const op = await startOperator({
      kc: new KubeConfig(),
      namespaces: [],
      api: { host: '127.0.0.1', port: 0 },
      logger: pino({ level: 'silent' }),
      onLostLeadership: () => {},
    });
    try {
      const res = await fetch(`${op.apiUrl}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      const body = await res.text();
      // no leader election: this process is the only leader
      expect(body).toContain('meson_operator_leader 1');
      expect(body).toContain('meson_process_cpu_seconds_total');
    } finally {
      await op.close();
    }
  });
});
