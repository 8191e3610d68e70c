// Types of diff.js (plain JavaScript, served to the browser as is) for the tests.
export const MAX_EDITS: number;
export function lineDiff(
  a: string[],
  b: string[],
  maxEdits?: number,
): { lines?: { op: ' ' | '-' | '+'; text: string }[]; tooDifferent?: boolean };
export function jsonLines(value: unknown): string[];
