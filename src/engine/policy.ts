// Small pure policies of the engine: artifact matching and retry backoff.
import type { Step } from '../crds/index.ts';
import type { ArtifactRecord, ArtifactSelector } from './types.ts';

/**
 * An announced artifact satisfies an input when the names are equal and the artifact's
 * partition contains every key of the input's partition with the same value (values compare as
 * strings, so `dateint: 20171107` matches `"20171107"`). Extra artifact keys are allowed.
 */
export function artifactMatches(selector: ArtifactSelector, artifact: ArtifactRecord): boolean {
  if (selector.name !== artifact.name) return false;
  const have = artifact.partition ?? {};
  for (const [k, v] of Object.entries(selector.partition)) {
    const got = have[k];
    if (got === undefined || String(got) !== v) return false;
  }
  return true;
}

/** Defaults of `retry.backoff` (seconds). */
export const DEFAULT_BACKOFF = { initialSeconds: 10, factor: 2, maxSeconds: 600 } as const;

/** Retries allowed after the first attempt. */
export function retryLimit(step: Step): number {
  return step.retry?.limit ?? 0;
}

/**
 * Delay before retry number `retry` (1 = the first retry), in milliseconds:
 * min(maxSeconds, initialSeconds * factor^(retry-1)).
 */
export function backoffMs(step: Step, retry: number): number {
  const b = step.retry?.backoff ?? {};
  const initial = b.initialSeconds ?? DEFAULT_BACKOFF.initialSeconds;
  const factor = b.factor ?? DEFAULT_BACKOFF.factor;
  const max = b.maxSeconds ?? DEFAULT_BACKOFF.maxSeconds;
  const seconds = Math.min(max, initial * factor ** Math.max(0, retry - 1));
  return Math.round(seconds * 1000);
}
