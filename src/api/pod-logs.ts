// Step logs in operator mode: the step Pod's container log, read through the API server's
// pods/log subresource (the kubelet keeps it; it goes with the Pod). A Pod is found by the
// labels and annotations the Kubernetes launcher gives it (src/launchers/kubernetes-pod.ts):
// the run label (shortened like every label value), then the exact run and step-instance
// annotations, the attempt annotation; the newest Pod of an attempt wins (a lost attempt is
// relaunched under a new launch id, in a new Pod).
//
// Differences from the files of standalone mode: stdout and stderr are one log (the
// container's), so `stream=` selects nothing (the answer says `x-meson-log-streams: combined`);
// a deleted Pod took its log along; a plain read is bounded (maxBytes, the newest bytes are
// dropped beyond it: limitBytes of pods/log).
import { Writable } from 'node:stream';
import { CoreV1Api, type KubeConfig, Log, type V1Pod } from '@kubernetes/client-node';
import {
  ATTEMPT_ANNOTATION,
  INSTANCE_ANNOTATION,
  LAUNCH_ID_LABEL,
  labelValue,
  MAIN_CONTAINER,
  RUN_ANNOTATION,
  RUN_LABEL,
} from '../launchers/kubernetes-pod.ts';
import type { StoreReads } from '../store/port.ts';
import { type AttemptInfo, type LogSource, type LogTarget, STEP_ENDED } from './logs.ts';
import type { Stream } from './streams.ts';

/** Largest plain (not followed) read of one Pod's log, in bytes (buildOperatorApi maxPodLogBytes). */
export const DEFAULT_POD_LOG_MAX_BYTES = 16 * 1024 * 1024;

/** The pods/log calls a PodLogSource makes (the API server's, or a test's). */
export interface PodLogApi {
  listPods(namespace: string, labelSelector: string): Promise<V1Pod[]>;
  /**
   * Streams the container's log into `out` (with `follow`, until the container ends); resolves
   * once the log answered, with the means to stop it. Rejects with an error carrying `code`
   * (the HTTP status: 400 while the container has not started, 404 when the Pod is gone).
   */
  log(
    namespace: string,
    pod: string,
    container: string,
    out: Writable,
    opts: { follow: boolean; limitBytes?: number },
  ): Promise<AbortController>;
}

export function kubePodLogApi(kc: KubeConfig): PodLogApi {
  const core = kc.makeApiClient(CoreV1Api);
  const log = new Log(kc);
  return {
    listPods: async (namespace, labelSelector) =>
      (await core.listNamespacedPod({ namespace, labelSelector })).items,
    log: (namespace, pod, container, out, opts) =>
      log.log(namespace, pod, container, out, {
        follow: opts.follow,
        ...(opts.limitBytes ? { limitBytes: opts.limitBytes } : {}),
      }),
  };
}

function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

function ms(t: Date | string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const v = new Date(t).getTime();
  return Number.isNaN(v) ? undefined : v;
}

/** The attempt a Pod runs, from its annotation (undefined: not a step Pod). */
export function attemptOf(pod: V1Pod): number | undefined {
  const n = Number(pod.metadata?.annotations?.[ATTEMPT_ANNOTATION]);
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

/** The label selector of a run's Pods (a label value: a run name can add no requirement). */
export function stepPodSelector(run: string): string {
  return `${RUN_LABEL}=${labelValue(run)}`;
}

/**
 * The Pods of one step instance among `pods` (listed by stepPodSelector), matched by the exact
 * run and step-instance annotations, oldest first (by attempt, then creation): the last one of
 * an attempt is its newest launch.
 */
export function stepPods(pods: V1Pod[], run: string, step: string): V1Pod[] {
  return pods
    .filter(
      (p) =>
        p.metadata?.annotations?.[RUN_ANNOTATION] === run &&
        p.metadata?.annotations?.[INSTANCE_ANNOTATION] === step &&
        attemptOf(p) !== undefined,
    )
    .sort(
      (a, b) =>
        attemptOf(a)! - attemptOf(b)! ||
        (ms(a.metadata?.creationTimestamp) ?? 0) - (ms(b.metadata?.creationTimestamp) ?? 0),
    );
}

export interface PodLogSourceOptions {
  /** How often a follow looks for the attempt's Pod before it exists or starts (ms). */
  pollMs: number;
  maxBytes?: number;
}

export class PodLogSource implements LogSource {
  readonly combined = true;
  private readonly store: StoreReads;
  private readonly api: PodLogApi;
  private readonly o: PodLogSourceOptions;

  constructor(store: StoreReads, api: PodLogApi, o: PodLogSourceOptions) {
    this.store = store;
    this.api = api;
    this.o = o;
  }

  private async pods(ns: string, run: string, step: string): Promise<V1Pod[]> {
    return stepPods(await this.api.listPods(ns, stepPodSelector(run)), run, step);
  }

  private async newestPod(ns: string, run: string, step: string, attempt: number) {
    return (await this.pods(ns, run, step)).filter((p) => attemptOf(p) === attempt).pop();
  }

  async attempts(ns: string, run: string, step: string): Promise<AttemptInfo[]> {
    return (await this.pods(ns, run, step)).map((p) => {
      const state = p.status?.containerStatuses?.find((c) => c.name === MAIN_CONTAINER)?.state;
      const started = state?.running?.startedAt ?? state?.terminated?.startedAt;
      const finished = state?.terminated?.finishedAt;
      const launched = ms(p.metadata?.creationTimestamp);
      return {
        attempt: attemptOf(p)!,
        launchId: p.metadata?.labels?.[LAUNCH_ID_LABEL] ?? '',
        phase: p.status?.phase ?? 'Pending',
        milestones: {
          ...(launched !== undefined ? { launched } : {}),
          ...(ms(started) !== undefined ? { running: ms(started) } : {}),
          ...(ms(finished) !== undefined ? { finished: ms(finished) } : {}),
        },
        ...(state?.terminated ? { exitCode: state.terminated.exitCode } : {}),
        ...(state?.terminated?.message ? { message: state.terminated.message.slice(0, 1000) } : {}),
      };
    });
  }

  async read(at: LogTarget & { attempt: number }): Promise<string | undefined> {
    const pod = await this.newestPod(at.ns, at.run, at.step, at.attempt);
    const name = pod?.metadata?.name;
    if (!name) return undefined;
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      const out = new Writable({
        write(chunk: Buffer, _enc, cb) {
          chunks.push(Buffer.from(chunk));
          cb();
        },
      });
      out.on('finish', resolve);
      out.on('error', reject);
      this.api
        .log(at.ns, name, MAIN_CONTAINER, out, {
          follow: false,
          limitBytes: this.o.maxBytes ?? DEFAULT_POD_LOG_MAX_BYTES,
        })
        .catch(reject);
    });
    try {
      await done;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return undefined; // the Pod went meanwhile
      if (status === 400) return ''; // the container has not started: no output yet
      throw err;
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /**
   * Waits for the attempt's Pod (polling), then follows its container log until it ends; ends
   * at once when the step ended without a Pod. Frees the request when `stream` closes.
   */
  follow(at: LogTarget & { attempt?: number }, stream: Stream): void {
    let abort: AbortController | undefined;
    let timer: NodeJS.Timeout | undefined;
    stream.onClose(() => {
      if (timer) clearTimeout(timer);
      abort?.abort();
    });
    const again = () => {
      if (!stream.closed) timer = setTimeout(() => void attempt(), this.o.pollMs);
    };
    const attempt = async () => {
      if (stream.closed) return;
      const inst = this.store.getStepInstance(at.ns, at.run, at.step);
      const data = (inst?.data ?? {}) as { phase?: string; attempts?: number };
      const n = at.attempt ?? data.attempts ?? 0;
      const ended = !inst || STEP_ENDED.has(data.phase ?? '') || (data.attempts ?? 0) > n;
      const pod = n >= 1 ? await this.newestPod(at.ns, at.run, at.step, n).catch(() => undefined) : undefined;
      const name = pod?.metadata?.name;
      if (!name) {
        if (ended) stream.close();
        else again();
        return;
      }
      // a client reading slowly pauses the log request (backpressure) instead of being dropped
      const out = new Writable({
        write(chunk: Buffer, _enc, cb) {
          stream.write(Buffer.from(chunk));
          if (stream.behind()) void stream.drained().then(() => cb());
          else cb();
        },
      });
      // the container's log ended (it exited) or the request broke: the stream ends with it
      out.on('finish', () => stream.close());
      try {
        abort = await this.api.log(at.ns, name, MAIN_CONTAINER, out, { follow: !ended });
        if (stream.closed) abort.abort();
      } catch (err) {
        // 400: the container is not running yet (ContainerCreating): look again later
        if (statusOf(err) === 400 && !ended) again();
        else stream.close();
      }
    };
    void attempt();
  }
}
