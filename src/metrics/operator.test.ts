import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startOperator } from '../operator/process.ts';
import { createOperatorMetrics } from './operator.ts';

describe('operator metrics', () => {
  it('reports leadership at scrape time', async () => {
    let leading = false;
    const registry = createOperatorMetrics({ isLeader: () => leading, processMetrics: false });
    expect(await registry.metrics()).toContain('meson_operator_leader 0');
    leading = true;
    expect(await registry.metrics()).toContain('meson_operator_leader 1');
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
