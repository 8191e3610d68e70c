// The Mesos endpoint's phase of `npm run bench operator` (OPERATOR_BENCH_PHASES=mesos):
// `mesonctl operator --mesos-endpoint` as a child process on the bench's control plane, and one
// framework (BenchFramework below: a small v1 scheduler client written from the protocol notes:
// SUBSCRIBE, ACCEPT with LAUNCH, DECLINE, ACKNOWLEDGE of every update that has a uuid, without
// waiting for one acknowledgement before reading the next event) launching TASKS
// command tasks of 0.1 cpus and 32 MB on the offers it gets. Each task is a Pod that kwok runs
// for the pod duration. Measured from the first ACCEPT: tasks per second until every task is
// TASK_STARTING (its Pod created, bound to its node: what ours_pods_per_s counts for steps), the
// time until every task is TASK_RUNNING (kwok ran it, and the framework acknowledged STARTING),
// and until TASK_FINISHED; ACCEPT calls made.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { decodeJsonRecord, RecordIoDecoder } from '../../src/mesos-compat/recordio.ts';
import type { Offer as MesosOffer, TaskInfo, TaskStatus } from '../../src/mesos-compat/schemas.ts';
import { freePorts } from '../cluster/health.ts';
import { waitFor } from '../cluster/wait.ts';
import { OPERATOR_NAMESPACE, startOperator } from './operator-ours.ts';

export interface MesosEndpointResult {
  tasks: number;
  tasksPerS: number;
  allStartingS: number;
  allRunningS: number;
  allFinishedS: number;
  accepts: number;
  hosts: number;
  rssMb: number;
}

const CPUS = 0.1;
const MEM = 32;

export async function measureMesosEndpoint(opts: {
  kc: KubeConfig;
  kubeconfigPath: string;
  namespace: string;
  tasks: number;
  podDuration: string;
  logPath: string;
  timeoutMs: number;
  log: (m: string) => void;
}): Promise<MesosEndpointResult> {
  const { kc, namespace, log } = opts;
  const core = kc.makeApiClient(CoreV1Api);
  for (const name of [OPERATOR_NAMESPACE, namespace])
    await core.createNamespace({ body: { metadata: { name } } }).catch((e: unknown) => {
      if ((e as { code?: number }).code !== 409) throw e;
    });
  const [port] = await freePorts(1);
  const operator = await startOperator({
    kubeconfigPath: opts.kubeconfigPath,
    namespace,
    logPath: opts.logPath,
    podDuration: opts.podDuration,
    args: [
      '--leader-elect=false',
      `--mesos-endpoint=127.0.0.1:${port}`,
      `--mesos-task-namespace=${namespace}`,
    ],
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor('the mesos endpoint', async () =>
    (await fetch(`${base}/version`).catch(() => undefined))?.ok ? true : undefined,
  );
  log(`  mesos: operator pid ${operator.pid} serving ${base} (log ${opts.logPath})`);

  const starting = new Set<string>();
  const running = new Set<string>();
  const finished = new Set<string>();
  const failed: string[] = [];
  let launched = 0;
  let accepts = 0;
  let t0: number | undefined;
  let allStarting: number | undefined;
  let allRunning: number | undefined;
  let allFinished: number | undefined;
  const hosts = new Set<string>();
  const client = new BenchFramework(base, (m) => log(`  mesos client: ${m}`));
  client.onOffers = (offers) => {
    for (const o of offers) {
      let cpus = scalar(o, 'cpus');
      let mem = scalar(o, 'mem');
      let pods = o.resources.some((r) => r.name === 'pods') ? scalar(o, 'pods') : Number.POSITIVE_INFINITY;
      const tasks: TaskInfo[] = [];
      while (launched < opts.tasks && cpus >= CPUS && mem >= MEM && pods >= 1) {
        const id = `t-${launched++}`;
        tasks.push({
          name: id,
          task_id: { value: id },
          agent_id: o.agent_id,
          resources: [
            { name: 'cpus', type: 'SCALAR', scalar: { value: CPUS } },
            { name: 'mem', type: 'SCALAR', scalar: { value: MEM } },
          ],
          command: { value: `echo ${id}` },
        });
        cpus -= CPUS;
        mem -= MEM;
        pods -= 1;
      }
      if (tasks.length === 0) {
        client.call({ type: 'DECLINE', decline: { offer_ids: [o.id], filters: { refuse_seconds: 3600 } } });
        continue;
      }
      t0 ??= performance.now();
      accepts++;
      hosts.add(o.hostname);
      client.call({
        type: 'ACCEPT',
        accept: {
          offer_ids: [o.id],
          operations: [{ type: 'LAUNCH', launch: { task_infos: tasks } }],
          filters: { refuse_seconds: 0 },
        },
      });
    }
  };
  client.onUpdate = (st) => {
    const id = st.task_id.value;
    if (st.state !== 'TASK_STAGING') starting.add(id);
    if (st.state === 'TASK_RUNNING') running.add(id);
    if (st.state === 'TASK_FINISHED') {
      running.add(id);
      finished.add(id);
    }
    if (['TASK_FAILED', 'TASK_LOST', 'TASK_ERROR', 'TASK_KILLED', 'TASK_DROPPED'].includes(st.state))
      failed.push(`${id} ${st.state} ${st.message ?? ''}`);
    const now = performance.now();
    if (allStarting === undefined && starting.size >= opts.tasks) allStarting = now;
    if (allRunning === undefined && running.size >= opts.tasks) allRunning = now;
    if (allFinished === undefined && finished.size >= opts.tasks) allFinished = now;
  };
  const progress = setInterval(
    () =>
      log(
        `  mesos: launched ${launched}, starting ${starting.size}, running ${running.size}, finished ${finished.size}`,
      ),
    5000,
  );
  await client.subscribe();
  try {
    await waitFor(
      `${opts.tasks} tasks to finish`,
      async () => {
        if (failed.length > 0) throw new Error(`tasks failed: ${failed.slice(0, 5).join('; ')}`);
        if (client.error) throw client.error;
        return allFinished !== undefined ? true : undefined;
      },
      { timeoutMs: opts.timeoutMs, intervalMs: 100 },
    );
  } finally {
    clearInterval(progress);
    await client.teardown();
  }
  const rssMb = operator.peakRss() / 2 ** 20;
  await operator.stop();
  const start = t0 ?? 0;
  const allStartingS = ((allStarting ?? 0) - start) / 1000;
  return {
    tasks: opts.tasks,
    tasksPerS: opts.tasks / allStartingS,
    allStartingS,
    allRunningS: ((allRunning ?? 0) - start) / 1000,
    allFinishedS: ((allFinished ?? 0) - start) / 1000,
    accepts,
    hosts: hosts.size,
    rssMb,
  };
}

export const MESOS_LOG = (dir: string): string => join(dir, 'logs', 'operator-mesos.log');

function scalar(o: MesosOffer, name: string): number {
  return o.resources.filter((r) => r.name === name).reduce((n, r) => n + (r.scalar?.value ?? 0), 0);
}

/**
 * A minimal framework: one subscription, calls posted without waiting for each other, every
 * update that carries a uuid acknowledged.
 */
export class BenchFramework {
  onOffers: (offers: MesosOffer[]) => void = () => {};
  onUpdate: (status: TaskStatus) => void = () => {};
  error: Error | undefined;
  #id: string | undefined;
  #stream: string | undefined;
  #abort = new AbortController();
  #inFlight = new Set<Promise<void>>();
  readonly #base: string;
  readonly #log: (m: string) => void;

  constructor(base: string, log: (m: string) => void) {
    this.#base = base;
    this.#log = log;
  }

  /** Subscribes; resolves once SUBSCRIBED arrived (events keep flowing in the background). */
  async subscribe(): Promise<void> {
    const res = await fetch(`${this.#base}/api/v1/scheduler`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        type: 'SUBSCRIBE',
        subscribe: { framework_info: { user: 'bench', name: 'mesos-bench', failover_timeout: 0 } },
      }),
      signal: this.#abort.signal,
    });
    if (res.status !== 200 || !res.body) throw new Error(`SUBSCRIBE answered ${res.status}`);
    this.#stream = res.headers.get('mesos-stream-id') ?? undefined;
    const decoder = new RecordIoDecoder();
    let subscribed!: () => void;
    const ready = new Promise<void>((r) => {
      subscribed = r;
    });
    void (async () => {
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          for (const record of decoder.push(chunk)) {
            // biome-ignore lint/suspicious/noExplicitAny: events as the endpoint sends them
            const ev = decodeJsonRecord(record) as any;
            if (ev.type === 'SUBSCRIBED') {
              this.#id = ev.subscribed.framework_id.value;
              subscribed();
            } else if (ev.type === 'OFFERS') this.onOffers(ev.offers.offers);
            else if (ev.type === 'UPDATE') {
              const st = ev.update.status as TaskStatus;
              this.onUpdate(st);
              if (st.uuid !== undefined && st.agent_id !== undefined)
                this.call({
                  type: 'ACKNOWLEDGE',
                  acknowledge: { agent_id: st.agent_id, task_id: st.task_id, uuid: st.uuid },
                });
            } else if (ev.type === 'ERROR') this.error = new Error(`ERROR event: ${ev.error.message}`);
          }
        }
      } catch (err) {
        if (!this.#abort.signal.aborted) this.error = err as Error;
      }
      if (!this.#abort.signal.aborted) this.error ??= new Error('the event stream ended');
    })();
    await ready;
  }

  /** Posts a call in the background; a failure ends the bench (this.error). */
  call(body: Record<string, unknown>): void {
    const p = (async () => {
      const res = await fetch(`${this.#base}/api/v1/scheduler`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'mesos-stream-id': this.#stream ?? '' },
        body: JSON.stringify({ ...body, framework_id: { value: this.#id } }),
      });
      const text = await res.text();
      if (res.status !== 202) throw new Error(`${String(body.type)} answered ${res.status}: ${text}`);
    })().catch((err: unknown) => {
      this.#log(String(err));
      this.error ??= err as Error;
    });
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  async teardown(): Promise<void> {
    await Promise.all(this.#inFlight);
    if (this.#id && !this.error) this.call({ type: 'TEARDOWN' });
    await Promise.all(this.#inFlight);
    this.#abort.abort();
  }
}
