// The operator's /metrics on the real control plane: run, step, scheduling and webhook
// delivery metrics after real runs (step Pods on KWOK), counted by the leader only, so a sum over
// the replicas counts each run once; MESON_METRICS_TOKEN guards the endpoint.
import { beforeAll, describe, expect, it } from 'vitest';
import { kubectlAsync } from '../cluster/kubectl.ts';
import { useNamespace } from '../cluster/namespace.ts';
import { waitFor } from '../cluster/wait.ts';
import { hook } from '../notify/hook.ts';
import {
  applyRbac,
  installCrdsServed,
  OPERATOR_NAMESPACE,
  type OperatorProcess,
  readyz,
  reconciling,
  spawnOperator,
  useOperatorProcesses,
  userKubeconfig,
} from './helpers.ts';

const ns = useNamespace('metrics');
const operators = useOperatorProcesses();
const TOKEN = 'metrics-test-token';
let kubeconfig: string;

beforeAll(async () => {
  await installCrdsServed();
  await applyRbac();
  kubeconfig = userKubeconfig().path;
});

async function operator(identity: string, podSeconds = 2): Promise<OperatorProcess> {
  const o = await spawnOperator(
    identity,
    kubeconfig,
    [
      `--namespace=${ns.name}`,
      `--state-namespace=${OPERATOR_NAMESPACE}`,
      `--pod-annotation=kwok.meson.dev/duration=${podSeconds}s`,
      '--notify-allow=127.0.0.1',
    ],
    { MESON_METRICS_TOKEN: TOKEN },
  );
  return operators.track(o);
}

async function apply(yaml: string): Promise<void> {
  const r = await kubectlAsync(['apply', '-f', '-'], yaml);
  if (r.status !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

async function scrape(o: OperatorProcess): Promise<string> {
  const res = await fetch(`${o.api}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.status).toBe(200);
  return res.text();
}

/** The value of one sample line (`series` as printed, labels included). */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('operator /metrics on the real control plane', () => {
  it('counts real runs, steps and webhook deliveries on the leader only; gauges while running; token required', async () => {
    let answers = 0;
    const receiver = await hook(() => (++answers === 1 ? 503 : 204));
    try {
      const lead = await operator('m-lead');
      await reconciling(lead, 20_000);
      const follow = await operator('m-follow');
      await waitFor('m-follow to stand by', async () =>
        (await readyz(follow)).body.leaderElection.startsWith('standing by') ? true : undefined,
      );

      // the token is required (its labels name namespaces and workflows); health stays open
      for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Basic ${TOKEN}` }]) {
        const res = await fetch(`${lead.api}/metrics`, { headers });
        expect(res.status, JSON.stringify(headers)).toBe(401);
        expect(await res.text()).not.toContain('meson_');
      }
      expect((await fetch(`${lead.api}/healthz`)).status).toBe(200);

      await apply(`apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: metered, namespace: ${ns.name} }
spec:
  notifications:
    - "on": [success]
      webhook: { url: "${receiver.url}" }
  definition:
    step: { name: work, container: { image: busybox, command: [sh, -c, "echo hi"] } }
`);
      await apply(`apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { name: metered-1, namespace: ${ns.name} }
spec: { workflow: metered }
`);
      // a run of a Workflow that does not exist: failed by the controller at start
      await apply(`apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { name: ghost-1, namespace: ${ns.name} }
spec: { workflow: ghost }
`);
      const labels = `namespace="${ns.name}",workflow="metered"`;
      // while its 2 s Pod runs: the gauges show the run, its running step and its launched task
      await waitFor(
        'the active-run gauges',
        async () => {
          const body = await scrape(lead);
          return value(body, `meson_runs_active{${labels},phase="Running"}`) === 1 &&
            value(body, `meson_step_instances{${labels},phase="Running"}`) === 1 &&
            value(body, `meson_tasks{namespace="${ns.name}",state="launched"}`) === 1
            ? true
            : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 100 },
      );
      expect(value(await scrape(follow), 'meson_operator_leader')).toBe(0);
      // a follower has no gauge series (sum() over replicas is the leader's)
      expect(await scrape(follow)).not.toMatch(/^meson_runs_active\{/m);

      let body = '';
      await waitFor(
        'the run, its step and its webhook delivery to be counted',
        async () => {
          body = await scrape(lead);
          return value(body, `meson_runs_finished_total{${labels},phase="Succeeded"}`) === 1 &&
            // the ghost run fails once the operator's grace for a Workflow still on its way ends (10 s)
            value(
              body,
              `meson_runs_finished_total{namespace="${ns.name}",workflow="ghost",phase="Failed"}`,
            ) === 1 &&
            value(body, 'meson_webhook_deliveries_total{outcome="delivered"}') === 1 &&
            // its state ConfigMap deleted
            value(body, 'meson_webhook_pending') === 0
            ? true
            : undefined;
        },
        {
          timeoutMs: 60_000,
          intervalMs: 200,
          describe: () =>
            `${body
              .split('\n')
              .filter((l) => /^meson_(webhook_(pending|deliveries)|runs_finished)/.test(l))
              .join('\n')}\n${lead
              .stdout()
              .split('\n')
              .filter((l) => l.includes('webhook'))
              .join('\n')}`,
        },
      );
      expect(value(body, `meson_runs_created_total{${labels}}`)).toBe(1);
      expect(value(body, `meson_runs_started_total{${labels}}`)).toBe(1);
      expect(value(body, `meson_run_duration_seconds_count{${labels},phase="Succeeded"}`)).toBe(1);
      expect(
        value(body, `meson_runs_finished_total{namespace="${ns.name}",workflow="ghost",phase="Failed"}`),
      ).toBe(1);
      expect(value(body, `meson_step_attempts_total{${labels},phase="Succeeded"}`)).toBe(1);
      expect(value(body, `meson_step_duration_seconds_count{${labels},phase="Succeeded"}`)).toBe(1);
      expect(
        value(body, `meson_step_duration_seconds_sum{${labels},phase="Succeeded"}`),
      ).toBeGreaterThanOrEqual(1);
      expect(value(body, 'meson_step_queue_seconds_count')).toBe(1);
      expect(value(body, 'meson_scheduler_placements_total')).toBe(1);
      expect(value(body, 'meson_offers{source="kubernetes"}')).toBeGreaterThan(0);
      expect(value(body, 'meson_webhook_deliveries_total{outcome="retried"}')).toBe(1);
      expect(value(body, 'meson_webhook_delivery_seconds_count{outcome="delivered"}')).toBe(1);
      expect(value(body, 'meson_operator_leader')).toBe(1);
      expect(body).not.toMatch(/^meson_runs_active\{/m);
      expect(body).not.toContain('metered-1');
      expect(receiver.bodies).toHaveLength(2);

      // the follower counted nothing: summing over the replicas counts each run once
      const other = await scrape(follow);
      expect(other).not.toMatch(/^meson_runs_finished_total\{/m);
      expect(other).not.toMatch(/^meson_step_attempts_total\{/m);
      expect(value(other, 'meson_webhook_deliveries_total{outcome="delivered"}')).toBe(0);
    } finally {
      await receiver.close();
    }
  });

  it('after a fail-over the new leader counts only what finishes under it: nothing twice', async () => {
    // 5 s Pods: the first leader dies well before relay-2's Pod ends
    const first = await operator('m-first', 5);
    await reconciling(first, 20_000);
    const second = await operator('m-second', 5);
    await apply(`apiVersion: meson.dev/v1alpha1
kind: Workflow
metadata: { name: relay, namespace: ${ns.name} }
spec:
  definition:
    step: { name: work, container: { image: busybox, command: [sh, -c, "echo hi"] } }
`);
    const labels = `namespace="${ns.name}",workflow="relay"`;
    const run = (name: string) =>
      apply(`apiVersion: meson.dev/v1alpha1
kind: WorkflowRun
metadata: { name: ${name}, namespace: ${ns.name} }
spec: { workflow: relay }
`);
    // one run finishes under the first leader
    await run('relay-1');
    await waitFor(
      'relay-1 counted by the first leader',
      async () =>
        value(await scrape(first), `meson_runs_finished_total{${labels},phase="Succeeded"}`) === 1
          ? true
          : undefined,
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    // another starts under it, and the leader dies mid-run (its Pod still running)
    await run('relay-2');
    await waitFor(
      'relay-2 started under the first leader',
      async () =>
        value(await scrape(first), `meson_runs_started_total{${labels}}`) === 2 ? true : undefined,
      { timeoutMs: 30_000, intervalMs: 100 },
    );
    first.child.kill('SIGKILL');
    await first.exited;
    await reconciling(second, 30_000);
    let body = '';
    await waitFor(
      'relay-2 counted by the second leader',
      async () => {
        body = await scrape(second);
        return value(body, `meson_runs_finished_total{${labels},phase="Succeeded"}`) === 1 ? true : undefined;
      },
      {
        timeoutMs: 60_000,
        intervalMs: 200,
        describe: () =>
          body
            .split('\n')
            .filter((l) => l.includes('relay'))
            .join('\n'),
      },
    );
    // the second leader adopted relay-2: it neither re-counts its creation and start, nor relay-1
    expect(value(body, `meson_runs_created_total{${labels}}`)).toBeUndefined();
    expect(value(body, `meson_runs_started_total{${labels}}`)).toBeUndefined();
    expect(value(body, `meson_step_attempts_total{${labels},phase="Succeeded"}`)).toBe(1);
    expect(value(body, 'meson_operator_leader')).toBe(1);
  });
});
