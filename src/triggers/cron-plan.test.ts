import { describe, expect, it } from 'vitest';
import { cronRunName, cronTriggerKey, planCronFires, type WorkflowCronInput } from './cron-plan.ts';

const at = (s: string) => Date.parse(s);
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

describe('cronRunName', () => {
  it('is deterministic, lower-case and DNS-label sized', () => {
    expect(cronRunName('Daily-Views', at('2026-01-02T03:04:05Z'))).toBe('daily-views-cron-20260102t030405z');
    const long = cronRunName('w'.repeat(80), at('2026-01-02T03:04:05Z'));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^w+-[0-9a-f]{6}-cron-20260102t030405z$/);
    expect(cronRunName('w'.repeat(80), 0)).not.toBe(cronRunName('w'.repeat(81), 0));
  });
});

describe('planCronFires', () => {
  const daily = { schedule: '0 0 0 1/1 * ? *', timezone: 'UTC' };
  const hourly = { schedule: '0 * * * *' };
  const key = cronTriggerKey;

  it('a new trigger fires nothing, starts its cursor and tells when to wake', () => {
    const now = at('2026-01-05T10:20:00Z');
    const plan = planCronFires([{ workflow: 'w', triggers: [daily, hourly], cursors: {} }], now);
    expect(plan.due).toEqual([]);
    expect(plan.cursors).toEqual([
      { namespace: undefined, workflow: 'w', triggerKey: key(daily), cursor: now },
      { namespace: undefined, workflow: 'w', triggerKey: key(hourly), cursor: now },
    ]);
    expect(iso(plan.nextWakeMs)).toBe('2026-01-05T11:00:00.000Z');
  });

  it('returns the due fires with idempotent run names and the cursors to persist', () => {
    const workflows: WorkflowCronInput[] = [
      {
        namespace: 'ns',
        workflow: 'a',
        triggers: [daily],
        cursors: { [key(daily)]: at('2026-01-04T00:00:00Z') },
      },
      {
        namespace: 'ns',
        workflow: 'b',
        triggers: [hourly],
        cursors: { [key(hourly)]: at('2026-01-05T08:00:00Z') },
        catchUp: { mode: 'all' },
      },
    ];
    const plan = planCronFires(workflows, at('2026-01-05T10:00:01Z'));
    expect(plan.due.map((d) => [d.workflow, iso(d.slotMs), d.runName])).toEqual([
      ['a', '2026-01-05T00:00:00.000Z', 'a-cron-20260105t000000z'],
      ['b', '2026-01-05T09:00:00.000Z', 'b-cron-20260105t090000z'],
      ['b', '2026-01-05T10:00:00.000Z', 'b-cron-20260105t100000z'],
    ]);
    expect(plan.cursors.map((c) => iso(c.cursor))).toEqual([
      '2026-01-05T00:00:00.000Z',
      '2026-01-05T10:00:00.000Z',
    ]);
    expect(iso(plan.nextWakeMs)).toBe('2026-01-05T11:00:00.000Z');
    // after persisting the cursors nothing is due until the next wake-up
    const cursors = Object.fromEntries(plan.cursors.map((c) => [`${c.workflow}`, c.cursor]));
    const again = planCronFires(
      workflows.map((w) => ({ ...w, cursors: { [key(w.triggers![0]!)]: cursors[w.workflow]! } })),
      at('2026-01-05T10:59:59Z'),
    );
    expect(again.due).toEqual([]);
  });

  it('reports invalid triggers without failing the others, and collapses coinciding slots', () => {
    const plan = planCronFires(
      [
        {
          workflow: 'w',
          triggers: [{ schedule: 'nope' }, daily, { schedule: '0 0 * * *', timezone: 'UTC' }],
          cursors: {
            [key(daily)]: at('2026-01-04T00:00:00Z'),
            [key({ schedule: '0 0 * * *', timezone: 'UTC' })]: at('2026-01-04T00:00:00Z'),
          },
        },
        { workflow: 'x', triggers: [{ schedule: '0 0 * * *', timezone: 'Nowhere/City' }], cursors: {} },
      ],
      at('2026-01-05T00:00:10Z'),
    );
    expect(plan.errors.map((e) => [e.workflow, e.code])).toEqual([
      ['w', 'CRON_INVALID'],
      ['x', 'CRON_TIMEZONE'],
    ]);
    expect(plan.due.map((d) => d.runName)).toEqual(['w-cron-20260105t000000z']);
  });

  it('one evaluatedUpTo instant per workflow works like per-trigger cursors', () => {
    const triggers = [daily, hourly];
    const first = planCronFires(
      [{ workflow: 'w', triggers, evaluatedUpToMs: at('2026-01-04T23:30:00Z') }],
      at('2026-01-05T00:00:01Z'),
    );
    expect(first.due.map((d) => d.runName)).toEqual(['w-cron-20260105t000000z']);
    expect(iso(first.evaluatedUpToMs)).toBe('2026-01-05T00:00:01.000Z');
    const second = planCronFires(
      [{ workflow: 'w', triggers, evaluatedUpToMs: first.evaluatedUpToMs }],
      at('2026-01-05T01:00:00Z'),
    );
    expect(second.due.map((d) => d.runName)).toEqual(['w-cron-20260105t010000z']);
    const idle = planCronFires(
      [{ workflow: 'w', triggers, evaluatedUpToMs: second.evaluatedUpToMs }],
      at('2026-01-05T01:59:00Z'),
    );
    expect(idle.due).toEqual([]);
  });

  it('null wake-up when every schedule is exhausted', () => {
    const plan = planCronFires(
      [{ workflow: 'w', triggers: [{ schedule: '0 0 0 1 1 ? 2020' }], cursors: {} }],
      at('2026-01-01T00:00:00Z'),
    );
    expect(plan.nextWakeMs).toBeNull();
  });
});
