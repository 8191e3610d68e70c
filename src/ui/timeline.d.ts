// Types of timeline.js (plain JavaScript, served to the browser as is) for the tests.
export interface Bar {
  attempt: number;
  phase: string;
  start: number;
  end: number;
  left: number;
  width: number;
}
export function timeline(
  instances: { id: string; phase: string; attempts?: number; startTime?: string; endTime?: string }[],
  attemptsById: Map<string, { attempt: number; phase?: string; milestones?: Record<string, number> }[]>,
  now: number,
): { t0: number; t1: number; rows: { id: string; phase: string; start: number; bars: Bar[] }[] };
export function span(ms: number): string;
