// The JSON body a notification webhook receives, built from a WorkflowRun. Pure.

import type { RunPhase, WorkflowRun } from '../crds/index.ts';

export type NotificationEvent = 'start' | 'success' | 'failure' | 'stopped';

export interface RunNotification {
  /** The event that triggered this notification. */
  event: NotificationEvent;
  /** `<namespace>/<run>/<event>`: the same for every retry of one delivery (receivers dedupe on it). */
  deliveryId: string;
  namespace: string;
  workflow: string;
  version: number | null;
  run: string;
  phase: RunPhase | null;
  initiator: string | null;
  startTime: string | null;
  endTime: string | null;
  message: string | null;
  /** Step instances that failed (at most MAX_FAILED_STEPS; `failedStepsTotal` counts all listed in the run). */
  failedSteps: {
    id: string;
    step: string;
    attempts: number | null;
    message: string | null;
    exitCode: number | null;
  }[];
  failedStepsTotal: number;
  /** Step instances per phase, when the run carries a summary. */
  stepPhases: Record<string, number> | null;
  links: { name: string; url: string }[];
}

const MAX_FAILED_STEPS = 20;

/** The notification event a phase change means, or null when it means none. */
export function eventForPhaseChange(
  previous: RunPhase | undefined,
  next: RunPhase | undefined,
): NotificationEvent | null {
  if (previous === next || next === undefined) return null;
  switch (next) {
    case 'Running':
      return previous === undefined || previous === 'Pending' ? 'start' : null;
    case 'Succeeded':
      return 'success';
    case 'Failed':
      return 'failure';
    case 'Stopped':
      return 'stopped';
    default:
      return null;
  }
}

export interface SummaryOptions {
  /** Base URL of the Meson API/UI, e.g. http://localhost:8080; adds a `run` link. */
  baseUrl?: string;
}

export function buildRunNotification(
  run: WorkflowRun,
  event: NotificationEvent,
  options: SummaryOptions = {},
): RunNotification {
  const namespace = run.metadata.namespace ?? 'default';
  const name = run.metadata.name ?? '';
  const status = run.status ?? {};
  const failed = (status.steps ?? []).filter((s) => s.phase === 'Failed');
  const links: { name: string; url: string }[] = [];
  if (options.baseUrl) {
    const base = options.baseUrl.replace(/\/+$/, '');
    links.push({
      name: 'run',
      url: `${base}/api/v1/namespaces/${encodeURIComponent(namespace)}/runs/${encodeURIComponent(name)}`,
    });
  }
  for (const s of failed.slice(0, MAX_FAILED_STEPS)) {
    for (const l of s.links ?? []) links.push({ name: `${s.id}: ${l.name}`, url: l.url });
  }
  const phases = status.summary?.phases;
  return {
    event,
    deliveryId: `${namespace}/${name}/${event}`,
    namespace,
    workflow: run.spec.workflow,
    version: status.version ?? run.spec.version ?? null,
    run: name,
    phase: status.phase ?? null,
    initiator: run.spec.initiator?.type ?? null,
    startTime: status.startTime ?? null,
    endTime: status.endTime ?? null,
    message: status.message ?? null,
    failedSteps: failed.slice(0, MAX_FAILED_STEPS).map((s) => ({
      id: s.id,
      step: s.step,
      attempts: s.attempts ?? null,
      message: s.message ?? null,
      exitCode: s.exitCode ?? null,
    })),
    failedStepsTotal: status.summary?.phases?.Failed ?? failed.length,
    stepPhases: phases
      ? Object.fromEntries(
          Object.entries(phases).filter((e): e is [string, number] => typeof e[1] === 'number'),
        )
      : null,
    links,
  };
}
