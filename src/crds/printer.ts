// Values that exist only for `kubectl get` printer columns (see CRD_KINDS in crd.ts), computed
// here so that every shell (operator, standalone) fills them the same way.

/**
 * `status.duration` of a WorkflowRun: the run time in kubectl's short style (`45s`, `3m12s`,
 * `2h5m`, `3d4h`; under a second in milliseconds, `350ms`, so that a quick run does not read as
 * `0s`; under ten seconds with tenths, `2.5s`), or undefined until the run has both a start and
 * an end time.
 */
export function formatRunDuration(startTime?: string, endTime?: string): string | undefined {
  if (startTime === undefined || endTime === undefined) return undefined;
  const start = Date.parse(startTime);
  const end = Date.parse(endTime);
  if (!Number.isFinite(start) || !Number.isFinite(end)) return undefined;
  const ms = Math.max(0, end - start);
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${Math.floor(ms / 100) / 10}s`;
  let s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86_400);
  s -= d * 86_400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d}d${h > 0 ? `${h}h` : ''}`;
  if (h > 0) return `${h}h${m > 0 ? `${m}m` : ''}`;
  if (m > 0) return `${m}m${s > 0 ? `${s}s` : ''}`;
  return `${s}s`;
}
