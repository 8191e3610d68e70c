// The Gantt chart of a run, as data: one row per step instance that started, one bar per
// attempt (launch to end, from the executor's milestones), placed as percentages of the run's
// time span. Pure; the page draws it (run.js).

const ENDED = new Set(['Succeeded', 'Failed', 'Skipped', 'Stopped']);

function ms(ts) {
  if (ts === undefined || ts === null) return undefined;
  const t = typeof ts === 'number' ? ts : Date.parse(ts);
  return Number.isFinite(t) ? t : undefined;
}

/**
 * @param {{ id: string, phase: string, attempts?: number, startTime?: string, endTime?: string }[]} instances
 * @param {Map<string, { attempt: number, phase?: string, milestones?: Record<string, number> }[]>} attemptsById
 * @param {number} now epoch ms (the end of what still runs)
 */
export function timeline(instances, attemptsById, now) {
  const rows = [];
  for (const inst of instances) {
    const open = !ENDED.has(inst.phase);
    const attempts = attemptsById.get(inst.id) ?? [];
    let bars = attempts
      .map((a) => {
        const m = a.milestones ?? {};
        const start = m.launched ?? m.queued ?? m.running;
        const over =
          m.finished ?? (a.phase && a.phase !== 'Running' && a.phase !== 'NotStarted' ? start : undefined);
        return { attempt: a.attempt, phase: a.phase ?? '', start, end: over ?? (open ? now : start) };
      })
      .filter((b) => b.start !== undefined);
    if (bars.length === 0) {
      const start = ms(inst.startTime);
      if (start === undefined) continue;
      const end = ms(inst.endTime) ?? (open ? now : start);
      bars = [{ attempt: Math.max(1, inst.attempts ?? 1), phase: inst.phase, start, end }];
    }
    rows.push({ id: inst.id, phase: inst.phase, start: Math.min(...bars.map((b) => b.start)), bars });
  }
  rows.sort((a, b) => a.start - b.start || a.id.localeCompare(b.id, 'en', { numeric: true }));
  const t0 = rows.length ? Math.min(...rows.map((r) => r.start)) : now;
  const t1 = Math.max(t0 + 1, ...rows.flatMap((r) => r.bars.map((b) => b.end)));
  const span = t1 - t0;
  for (const r of rows) {
    for (const b of r.bars) {
      b.left = ((b.start - t0) / span) * 100;
      b.width = Math.max(0.4, ((Math.max(b.end, b.start) - b.start) / span) * 100);
      if (b.left + b.width > 100) b.left = Math.max(0, 100 - b.width);
    }
  }
  return { t0, t1, rows };
}

/** A duration in ms as "1h2m", "3m4s", "5.2s". */
export function span(msValue) {
  const s = msValue / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}
