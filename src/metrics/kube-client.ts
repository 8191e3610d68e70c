// The operator's Kubernetes API client (src/operator/rate-limit.ts): requests by method,
// resource and code, their latency, the time spent waiting for the client-side rate limiter,
// and the server's push-backs (API Priority and Fairness 429s). Named after client-go's
// rest_client_* metrics. Labels are HTTP methods, resource kinds and status codes: bounded.
import { Counter, Histogram, type Registry } from 'prom-client';
import type { ClientObserver } from '../operator/rate-limit.ts';

export function kubeClientMetrics(registry: Registry): ClientObserver {
  const requests = new Counter({
    name: 'meson_kube_client_requests_total',
    help: 'Requests to the Kubernetes API server, by method, resource and HTTP code ("error": no answer).',
    labelNames: ['method', 'resource', 'code'] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'meson_kube_client_request_duration_seconds',
    help: 'Time from sending a request to the API server to its answer, by method.',
    labelNames: ['method'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const limiterWait = new Histogram({
    name: 'meson_kube_client_rate_limiter_wait_seconds',
    help: 'Time a request waited for the client-side rate limiter (--kube-qps, --kube-burst) or a Retry-After.',
    buckets: [0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const throttled = new Counter({
    name: 'meson_kube_client_throttled_total',
    help: 'Answers that said to come back later (429, or a 5xx with Retry-After), by code and whether the request was sent again.',
    labelNames: ['code', 'retried'] as const,
    registers: [registry],
  });
  return {
    request({ method, resource, code, seconds }) {
      requests.inc({ method, resource, code });
      latency.observe({ method }, seconds);
    },
    waited(seconds) {
      limiterWait.observe(seconds);
    },
    throttled({ code, retried }) {
      throttled.inc({ code: String(code), retried: String(retried) });
    },
  };
}
