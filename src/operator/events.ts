// Kubernetes Events on WorkflowRuns: `kubectl describe mwfr` and `kubectl get events` show when
// a run started, which of its steps were preempted (evicted for a higher tier), and how it ended. Best effort: an Event that cannot be written is logged and
// dropped (it never delays or fails a reconcile pass), at most `maxInFlight` are in flight (more
// are dropped), and a message is cut to `maxMessageChars`.
import { CoreV1Api, type CoreV1Event, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from '../controller/controller.ts';
import { API_VERSION, type WorkflowRun } from '../crds/index.ts';
import type { Stored } from '../store/types.ts';

export const EVENT_COMPONENT = 'meson-operator';
/** Longer messages are cut (the API server takes 1 KiB at most for an events.k8s.io note). */
export const MAX_EVENT_MESSAGE_CHARS = 1000;

export interface RunEventsOptions {
  kc: KubeConfig;
  logger: Logger;
  /** This replica's identity (reportingInstance). */
  instance: string;
  now?: () => number;
  /** Events being written at once; more are dropped. Default 16. */
  maxInFlight?: number;
}

/** The first `n` UTF-16 units of `s`, one less when that would split a surrogate pair. */
function cut(s: string, n: number): string {
  const code = s.charCodeAt(n - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? n - 1 : n);
}

/** A step of the run was preempted: what its Event says. */
export interface StepPreemption {
  step: string;
  attempt: number;
  message: string;
}

/** The Event for a run that started or finished, or one of whose steps was preempted (pure). */
export function runEvent(
  run: Stored<WorkflowRun>,
  what: 'started' | 'finished' | StepPreemption,
  at: Date,
  instance: string,
): CoreV1Event {
  const phase = run.status?.phase;
  const preempted = typeof what === 'object';
  const failed = preempted || (what === 'finished' && phase !== 'Succeeded');
  const reason = preempted
    ? 'StepPreempted'
    : what === 'started'
      ? 'RunStarted'
      : `Run${phase ?? 'Finished'}`;
  const text = preempted
    ? `step ${what.step} attempt ${what.attempt}: ${what.message}`
    : what === 'started'
      ? `started version ${run.status?.version ?? '?'} of workflow ${run.spec.workflow}`
      : `${(phase ?? 'finished').toLowerCase()}${run.status?.duration ? ` after ${run.status.duration}` : ''}${
          run.status?.message ? `: ${run.status.message}` : ''
        }`;
  const message = text.length > MAX_EVENT_MESSAGE_CHARS ? `${cut(text, MAX_EVENT_MESSAGE_CHARS - 1)}…` : text;
  return {
    metadata: { generateName: `${run.metadata.name.slice(0, 200)}.`, namespace: run.metadata.namespace },
    involvedObject: {
      apiVersion: API_VERSION,
      kind: 'WorkflowRun',
      name: run.metadata.name,
      namespace: run.metadata.namespace,
      ...(run.metadata.uid ? { uid: run.metadata.uid } : {}),
      ...(run.metadata.resourceVersion ? { resourceVersion: run.metadata.resourceVersion } : {}),
    },
    reason,
    message,
    type: failed ? 'Warning' : 'Normal',
    source: { component: EVENT_COMPONENT },
    reportingComponent: `meson.dev/${EVENT_COMPONENT}`,
    reportingInstance: instance.slice(0, 128),
    firstTimestamp: at,
    lastTimestamp: at,
    count: 1,
  };
}

export class RunEvents {
  private readonly core: CoreV1Api;
  private readonly o: RunEventsOptions;
  private inFlight = 0;
  dropped = 0;

  constructor(o: RunEventsOptions) {
    this.o = o;
    this.core = o.kc.makeApiClient(CoreV1Api);
  }

  runStarted(run: Stored<WorkflowRun>): void {
    this.emit(run, 'started');
  }

  runFinished(run: Stored<WorkflowRun>): void {
    this.emit(run, 'finished');
  }

  stepPreempted(run: Stored<WorkflowRun>, preemption: StepPreemption): void {
    this.emit(run, preemption);
  }

  private emit(run: Stored<WorkflowRun>, what: 'started' | 'finished' | StepPreemption): void {
    if (this.inFlight >= (this.o.maxInFlight ?? 16)) {
      this.dropped++;
      return;
    }
    const body = runEvent(run, what, new Date((this.o.now ?? Date.now)()), this.o.instance);
    this.inFlight++;
    this.core
      .createNamespacedEvent({ namespace: run.metadata.namespace, body })
      .catch((err: unknown) => {
        this.o.logger.warn(
          { run: `${run.metadata.namespace}/${run.metadata.name}`, reason: body.reason, err: String(err) },
          'cannot record a Kubernetes Event',
        );
      })
      .finally(() => {
        this.inFlight--;
      });
  }
}
