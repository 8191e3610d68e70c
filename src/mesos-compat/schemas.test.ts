import { describe, expect, it } from 'vitest';
import {
  Call,
  describeIssues,
  Event,
  isTerminalState,
  MESOS_LIMITS,
  Resource,
  TASK_STATES,
  TaskInfo,
  TaskStatus,
} from './schemas.ts';

const fw = { value: 'fw-1' };

function issues(schema: typeof Call, v: unknown): string {
  const r = schema.safeParse(v);
  if (r.success) return '';
  return describeIssues(r.error);
}

describe('Mesos call schemas', () => {
  it('accepts the calls pymesos sends, with unknown extra fields', () => {
    const calls = [
      {
        type: 'SUBSCRIBE',
        subscribe: {
          framework_info: {
            user: 'u',
            name: 'n',
            failover_timeout: 100,
            capabilities: [{ type: 'GPU_RESOURCES' }, { type: 'SOME_FUTURE_CAPABILITY' }],
          },
        },
      },
      {
        type: 'SUBSCRIBE',
        framework_id: fw,
        subscribe: { framework_info: { user: 'u', name: 'n', id: fw } },
      },
      { type: 'TEARDOWN', framework_id: fw },
      {
        type: 'ACCEPT',
        framework_id: fw,
        accept: {
          offer_ids: [{ value: 'o1' }],
          operations: [
            {
              type: 'LAUNCH',
              launch: {
                task_infos: [
                  {
                    name: 't',
                    task_id: { value: 't1' },
                    agent_id: { value: 'a1' },
                    resources: [
                      { name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } },
                      { name: 'ports', type: 'RANGES', ranges: { range: [{ begin: '31000', end: 31001 }] } },
                      { name: 'disks', type: 'SET', set: { item: ['ssd'] } },
                    ],
                    command: { value: 'echo hi', shell: true },
                    future_field: 1,
                  },
                ],
              },
            },
          ],
          filters: { refuse_seconds: 5 },
        },
      },
      { type: 'DECLINE', framework_id: fw, decline: { offer_ids: [{ value: 'o1' }] } },
      { type: 'REVIVE', framework_id: fw },
      { type: 'REVIVE', framework_id: fw, revive: { roles: ['*'] } },
      { type: 'SUPPRESS', framework_id: fw },
      { type: 'KILL', framework_id: fw, kill: { task_id: { value: 't1' } } },
      {
        type: 'ACKNOWLEDGE',
        framework_id: fw,
        acknowledge: { agent_id: { value: 'a' }, task_id: { value: 't' }, uuid: 'AAECAw==' },
      },
      { type: 'RECONCILE', framework_id: fw, reconcile: { tasks: [] } },
    ];
    for (const c of calls) expect(issues(Call, c), c.type).toBe('');
    const parsed = Call.parse(calls[3]);
    if (parsed.type !== 'ACCEPT') throw new Error('discriminated wrongly');
    // uint64 as a decimal string (proto3 JSON) becomes a number
    expect(parsed.accept.operations[0]?.launch?.task_infos[0]?.resources[1]?.ranges?.range[0]?.begin).toBe(
      31000,
    );
  });

  it('names the field path and what was expected for bad calls', () => {
    expect(issues(Call, { type: 'DECLINE', decline: { offer_ids: [{ value: 'o' }] } })).toMatch(
      /call\.framework_id: /,
    );
    expect(issues(Call, { type: 'DECLINE', framework_id: fw, decline: { offer_ids: [] } })).toMatch(
      /call\.decline\.offer_ids: at least one offer id/,
    );
    expect(
      issues(Call, { type: 'ACCEPT', framework_id: fw, accept: { offer_ids: [{ value: 'o' }] } }),
    ).toMatch(/call\.accept\.operations/);
    expect(issues(Call, { type: 'NOPE', framework_id: fw })).toMatch(/call\.type/);
    expect(
      issues(Call, {
        type: 'ACKNOWLEDGE',
        framework_id: fw,
        acknowledge: { agent_id: { value: 'a' }, task_id: { value: 't' }, uuid: 'not base64!' },
      }),
    ).toMatch(/call\.acknowledge\.uuid: expected base64/);
    expect(
      issues(Call, {
        type: 'SUBSCRIBE',
        framework_id: { value: 'a' },
        subscribe: { framework_info: { user: 'u', name: 'n', id: { value: 'b' } } },
      }),
    ).toMatch(/framework_id must equal subscribe\.framework_info\.id/);
    expect(
      issues(Call, {
        type: 'ACCEPT',
        framework_id: fw,
        accept: { offer_ids: [{ value: '' }], operations: [] },
      }),
    ).toMatch(/offer_ids\.0\.value/);
  });

  it('bounds lists and strings (a hostile body costs bounded work)', () => {
    const many = Array.from({ length: 1025 }, (_, i) => ({ value: `o${i}` }));
    expect(issues(Call, { type: 'DECLINE', framework_id: fw, decline: { offer_ids: many } })).toMatch(
      /offer_ids: Too big/i,
    );
    expect(issues(Call, { type: 'TEARDOWN', framework_id: { value: 'x'.repeat(257) } })).toMatch(
      /framework_id\.value/,
    );
  });

  it('checks TaskInfo: exactly one of command or executor; resources carry their typed field', () => {
    const base = { name: 't', task_id: { value: 't' }, agent_id: { value: 'a' }, resources: [] };
    expect(TaskInfo.safeParse(base).success).toBe(false);
    expect(
      TaskInfo.safeParse({ ...base, command: { value: 'x' }, executor: { executor_id: { value: 'e' } } })
        .success,
    ).toBe(false);
    expect(TaskInfo.safeParse({ ...base, command: { value: 'x' } }).success).toBe(true);
    expect(Resource.safeParse({ name: 'cpus', type: 'SCALAR', ranges: { range: [] } }).success).toBe(false);
    expect(Resource.safeParse({ name: 'cpus', type: 'SCALAR', scalar: { value: -1 } }).success).toBe(false);
    expect(
      Resource.safeParse({ name: 'p', type: 'RANGES', ranges: { range: [{ begin: 5, end: 4 }] } }).success,
    ).toBe(false);
    expect(
      Resource.safeParse({ name: 'p', type: 'RANGES', ranges: { range: [{ begin: '1e3', end: 4 }] } })
        .success,
    ).toBe(false);
  });
});

describe('TaskStatus and events', () => {
  it('knows every TaskState and which are terminal', () => {
    expect(Object.keys(TASK_STATES)).toHaveLength(14);
    const terminal = Object.keys(TASK_STATES).filter((s) => isTerminalState(s as keyof typeof TASK_STATES));
    expect(terminal.sort()).toEqual(
      [
        'TASK_DROPPED',
        'TASK_ERROR',
        'TASK_FAILED',
        'TASK_FINISHED',
        'TASK_GONE',
        'TASK_GONE_BY_OPERATOR',
        'TASK_KILLED',
        'TASK_LOST',
      ].sort(),
    );
    for (const state of Object.keys(TASK_STATES)) {
      expect(TaskStatus.safeParse({ task_id: { value: 't' }, state }).success, state).toBe(true);
    }
    expect(TaskStatus.safeParse({ task_id: { value: 't' }, state: 'TASK_DONE' }).success).toBe(false);
  });

  it('parses each event type', () => {
    const events = [
      { type: 'SUBSCRIBED', subscribed: { framework_id: fw, heartbeat_interval_seconds: 15 } },
      {
        type: 'OFFERS',
        offers: {
          offers: [
            {
              id: { value: 'o' },
              framework_id: fw,
              agent_id: { value: 'a' },
              hostname: 'h',
              resources: [{ name: 'mem', type: 'SCALAR', scalar: { value: 128 } }],
              attributes: [{ name: 'rack', type: 'TEXT', text: { value: 'r1' } }],
            },
          ],
        },
      },
      { type: 'RESCIND', rescind: { offer_id: { value: 'o' } } },
      {
        type: 'UPDATE',
        update: {
          status: {
            task_id: { value: 't' },
            state: 'TASK_RUNNING',
            uuid: 'AAECAw==',
            source: 'SOURCE_AGENT',
          },
        },
      },
      { type: 'HEARTBEAT' },
      { type: 'ERROR', error: { message: 'framework removed' } },
      { type: 'FAILURE', failure: { agent_id: { value: 'a' }, executor_id: { value: 'e' }, status: 9 } },
    ];
    for (const e of events) expect(Event.safeParse(e).success, e.type).toBe(true);
    expect(Event.safeParse({ type: 'ERROR', message: 'doc sample shape' }).success).toBe(false);
  });
});

describe('LAUNCH_GROUP schema', () => {
  const groupTask = (id: string) => ({
    name: id,
    task_id: { value: id },
    agent_id: { value: 'a1' },
    resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } }],
    command: { value: 'echo hi' },
  });
  const accept = (launchGroup: unknown, type = 'LAUNCH_GROUP') => ({
    type: 'ACCEPT',
    framework_id: fw,
    accept: { offer_ids: [{ value: 'o1' }], operations: [{ type, launch_group: launchGroup }] },
  });
  const executor = { type: 'DEFAULT', executor_id: { value: 'e1' } };

  it('accepts a group: an executor and tasks without their own executor', () => {
    expect(issues(Call, accept({ executor, task_group: { tasks: [groupTask('a'), groupTask('b')] } }))).toBe(
      '',
    );
  });

  it('refuses a LAUNCH_GROUP without its field, an empty group, a task without command, a missing executor', () => {
    expect(issues(Call, accept(undefined))).toMatch(
      /call\.accept\.operations\.0\.launch_group: a LAUNCH_GROUP operation needs its launch_group field/,
    );
    expect(issues(Call, accept({ executor, task_group: { tasks: [] } }))).toMatch(
      /launch_group\.task_group\.tasks: a task group needs at least one task/,
    );
    const { command: _c, ...noCommand } = groupTask('a');
    expect(issues(Call, accept({ executor, task_group: { tasks: [noCommand] } }))).toMatch(
      /launch_group\.task_group\.tasks\.0\.command/,
    );
    expect(issues(Call, accept({ task_group: { tasks: [groupTask('a')] } }))).toMatch(
      /launch_group\.executor/,
    );
  });

  it('bounds a group like every list: 1025 tasks, a 64 KiB + 1 command, an oversized id are refused', () => {
    const many = Array.from({ length: MESOS_LIMITS.listItems + 1 }, (_, i) => groupTask(`t${i}`));
    expect(issues(Call, accept({ executor, task_group: { tasks: many } }))).toMatch(
      /task_group\.tasks: Too big/i,
    );
    const huge = { ...groupTask('a'), command: { value: 'x'.repeat(MESOS_LIMITS.textChars + 1) } };
    expect(issues(Call, accept({ executor, task_group: { tasks: [huge] } }))).toMatch(/command\.value/);
    const longId = groupTask('x'.repeat(MESOS_LIMITS.idChars + 1));
    expect(issues(Call, accept({ executor, task_group: { tasks: [longId] } }))).toMatch(/task_id\.value/);
    const badExecutorType = { ...executor, type: 'ROGUE' };
    expect(
      issues(Call, accept({ executor: badExecutorType, task_group: { tasks: [groupTask('a')] } })),
    ).toMatch(/launch_group\.executor\.type/);
  });
});
