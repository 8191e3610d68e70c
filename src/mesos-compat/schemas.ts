/**
 * zod schemas for the JSON form of the Mesos v1 scheduler API: the calls a framework posts, the
 * events a master streams, and the messages they carry. Field names are proto snake_case, enums
 * are name strings, `bytes` fields are base64. Messages accept unknown fields (newer Mesos
 * versions add some) but every field we read is checked, and every list and string is bounded
 * so that a hostile body costs bounded work.
 */
import { z } from 'zod';

/** Bounds on what one call may carry. */
export const MESOS_LIMITS = {
  idChars: 256,
  nameChars: 1024,
  textChars: 64 * 1024,
  listItems: 1024,
  /** base64 of `data` fields (TaskInfo.data, TaskStatus.data): 1 MiB decoded. */
  base64Chars: Math.ceil((1024 * 1024) / 3) * 4,
} as const;

const str = (max: number = MESOS_LIMITS.nameChars) => z.string().max(max);
const list = <T extends z.ZodType>(item: T, max: number = MESOS_LIMITS.listItems) => z.array(item).max(max);

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
export const Base64 = z
  .string()
  .max(MESOS_LIMITS.base64Chars)
  .regex(BASE64, { message: 'expected base64 (standard alphabet, padded)' });

export const Id = z.looseObject({ value: z.string().min(1).max(MESOS_LIMITS.idChars) });
export type Id = z.infer<typeof Id>;

/** uint64 as JSON writes it: a number or a decimal string (proto3 JSON), kept within safe integers. */
const Uint64 = z
  .union([
    z.number().int().nonnegative(),
    z.string().regex(/^[0-9]{1,16}$/, { message: 'expected a uint64' }),
  ])
  .transform((v) => Number(v))
  .pipe(z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER));

export const Scalar = z.looseObject({ value: z.number().finite() });
export const Range = z
  .looseObject({ begin: Uint64, end: Uint64 })
  .refine((r) => r.begin <= r.end, { message: 'range begin must not exceed its end' });
export const Ranges = z.looseObject({ range: list(Range) });
export const ValueSet = z.looseObject({ item: list(str()) });
export const Text = z.looseObject({ value: str(MESOS_LIMITS.textChars) });

const VALUE_TYPES = ['SCALAR', 'RANGES', 'SET'] as const;

function hasBodyForType(v: {
  type: string;
  scalar?: unknown;
  ranges?: unknown;
  set?: unknown;
  text?: unknown;
}) {
  const field = v.type.toLowerCase() as 'scalar' | 'ranges' | 'set' | 'text';
  return v[field] !== undefined;
}

export const Resource = z
  .looseObject({
    name: z.string().min(1).max(MESOS_LIMITS.nameChars),
    type: z.enum(VALUE_TYPES),
    scalar: Scalar.optional(),
    ranges: Ranges.optional(),
    set: ValueSet.optional(),
    role: str().optional(),
    allocation_info: z.looseObject({ role: str().optional() }).optional(),
    reservations: list(z.unknown()).optional(),
  })
  .refine(hasBodyForType, {
    message: 'a resource must carry the field named by its type (scalar, ranges or set)',
  })
  .refine((r) => r.type !== 'SCALAR' || (r.scalar?.value ?? 0) >= 0, {
    message: 'a scalar resource cannot be negative',
  });
export type Resource = z.infer<typeof Resource>;

export const Attribute = z
  .looseObject({
    name: z.string().min(1).max(MESOS_LIMITS.nameChars),
    type: z.enum([...VALUE_TYPES, 'TEXT']),
    scalar: Scalar.optional(),
    ranges: Ranges.optional(),
    set: ValueSet.optional(),
    text: Text.optional(),
  })
  .refine(hasBodyForType, { message: 'an attribute must carry the field named by its type' });
export type Attribute = z.infer<typeof Attribute>;

export const Labels = z.looseObject({
  labels: list(z.looseObject({ key: str(), value: str(MESOS_LIMITS.textChars).optional() })),
});

export const Filters = z.looseObject({ refuse_seconds: z.number().finite().optional() });
export type Filters = z.infer<typeof Filters>;

export const FRAMEWORK_CAPABILITIES = [
  'UNKNOWN',
  'REVOCABLE_RESOURCES',
  'TASK_KILLING_STATE',
  'GPU_RESOURCES',
  'SHARED_RESOURCES',
  'PARTITION_AWARE',
  'MULTI_ROLE',
  'RESERVATION_REFINEMENT',
  'REGION_AWARE',
] as const;

export const FrameworkInfo = z.looseObject({
  user: z.string().max(MESOS_LIMITS.nameChars),
  name: z.string().max(MESOS_LIMITS.nameChars),
  id: Id.optional(),
  failover_timeout: z.number().finite().nonnegative().optional(),
  checkpoint: z.boolean().optional(),
  role: str().optional(),
  roles: list(str()).optional(),
  hostname: str().optional(),
  principal: str().optional(),
  webui_url: str().optional(),
  // Unknown capability names are kept as strings: newer frameworks send newer ones.
  capabilities: list(z.looseObject({ type: str() })).optional(),
  labels: Labels.optional(),
});
export type FrameworkInfo = z.infer<typeof FrameworkInfo>;

export const CommandInfo = z.looseObject({
  uris: list(
    z.looseObject({
      value: str(MESOS_LIMITS.textChars),
      executable: z.boolean().optional(),
      extract: z.boolean().optional(),
      cache: z.boolean().optional(),
      output_file: str().optional(),
    }),
  ).optional(),
  environment: z
    .looseObject({
      variables: list(
        z.looseObject({
          name: str(),
          type: z.enum(['UNKNOWN', 'VALUE', 'SECRET']).optional(),
          value: str(MESOS_LIMITS.textChars).optional(),
        }),
      ),
    })
    .optional(),
  shell: z.boolean().optional(),
  value: str(MESOS_LIMITS.textChars).optional(),
  arguments: list(str(MESOS_LIMITS.textChars)).optional(),
  user: str().optional(),
});
export type CommandInfo = z.infer<typeof CommandInfo>;

export const ContainerInfo = z.looseObject({
  type: z.enum(['MESOS', 'DOCKER']),
  docker: z.looseObject({ image: str() }).optional(),
  mesos: z.looseObject({}).optional(),
  volumes: list(z.looseObject({ container_path: str(), mode: z.enum(['RW', 'RO']).optional() })).optional(),
  hostname: str().optional(),
});

export const ExecutorInfo = z.looseObject({
  type: z.enum(['UNKNOWN', 'DEFAULT', 'CUSTOM']).optional(),
  executor_id: Id,
  framework_id: Id.optional(),
  command: CommandInfo.optional(),
  container: ContainerInfo.optional(),
  resources: list(Resource).optional(),
  name: str().optional(),
  data: Base64.optional(),
});
export type ExecutorInfo = z.infer<typeof ExecutorInfo>;

export const KillPolicy = z.looseObject({
  grace_period: z
    .looseObject({ nanoseconds: z.union([z.number().int(), z.string().regex(/^-?\d{1,19}$/)]) })
    .optional(),
});

export const TaskInfo = z
  .looseObject({
    name: z.string().max(MESOS_LIMITS.nameChars),
    task_id: Id,
    agent_id: Id,
    resources: list(Resource),
    executor: ExecutorInfo.optional(),
    command: CommandInfo.optional(),
    container: ContainerInfo.optional(),
    kill_policy: KillPolicy.optional(),
    data: Base64.optional(),
    labels: Labels.optional(),
  })
  .refine((t) => (t.executor === undefined) !== (t.command === undefined), {
    message: 'a TaskInfo needs exactly one of executor or command',
  });
export type TaskInfo = z.infer<typeof TaskInfo>;

export const OPERATION_TYPES = [
  'UNKNOWN',
  'LAUNCH',
  'LAUNCH_GROUP',
  'RESERVE',
  'UNRESERVE',
  'CREATE',
  'DESTROY',
  'GROW_VOLUME',
  'SHRINK_VOLUME',
  'CREATE_DISK',
  'DESTROY_DISK',
] as const;

/**
 * A task of a group: as TaskInfo, but its executor is the group's (Mesos' master copies it in), so
 * `executor` may be absent, and it needs a command (the default executor runs each task's command).
 */
export const GroupTaskInfo = z.looseObject({
  name: z.string().max(MESOS_LIMITS.nameChars),
  task_id: Id,
  agent_id: Id,
  resources: list(Resource),
  executor: ExecutorInfo.optional(),
  command: CommandInfo,
  container: ContainerInfo.optional(),
  kill_policy: KillPolicy.optional(),
  data: Base64.optional(),
  labels: Labels.optional(),
});
export type GroupTaskInfo = z.infer<typeof GroupTaskInfo>;

/** Offer.Operation.LaunchGroup: tasks launched together on one agent under one executor. */
export const LaunchGroup = z.looseObject({
  executor: ExecutorInfo,
  task_group: z.looseObject({
    tasks: list(GroupTaskInfo).min(1, { message: 'a task group needs at least one task' }),
  }),
});
export type LaunchGroup = z.infer<typeof LaunchGroup>;

export const Operation = z
  .looseObject({
    type: z.enum(OPERATION_TYPES),
    id: Id.optional(),
    launch: z.looseObject({ task_infos: list(TaskInfo) }).optional(),
    launch_group: LaunchGroup.optional(),
  })
  .refine((op) => op.type !== 'LAUNCH' || op.launch !== undefined, {
    message: 'a LAUNCH operation needs its launch field',
    path: ['launch'],
  })
  .refine((op) => op.type !== 'LAUNCH_GROUP' || op.launch_group !== undefined, {
    message: 'a LAUNCH_GROUP operation needs its launch_group field',
    path: ['launch_group'],
  });
export type Operation = z.infer<typeof Operation>;

/** Every TaskState with its proto number; `terminal` as Mesos' isTerminalState has it. */
export const TASK_STATES = {
  TASK_STAGING: { n: 6, terminal: false },
  TASK_STARTING: { n: 0, terminal: false },
  TASK_RUNNING: { n: 1, terminal: false },
  TASK_KILLING: { n: 8, terminal: false },
  TASK_FINISHED: { n: 2, terminal: true },
  TASK_FAILED: { n: 3, terminal: true },
  TASK_KILLED: { n: 4, terminal: true },
  TASK_ERROR: { n: 7, terminal: true },
  TASK_LOST: { n: 5, terminal: true },
  TASK_DROPPED: { n: 9, terminal: true },
  TASK_UNREACHABLE: { n: 10, terminal: false },
  TASK_GONE: { n: 11, terminal: true },
  TASK_GONE_BY_OPERATOR: { n: 12, terminal: true },
  TASK_UNKNOWN: { n: 13, terminal: false },
} as const;
export type TaskStateName = keyof typeof TASK_STATES;
export const TaskState = z.enum(Object.keys(TASK_STATES) as [TaskStateName, ...TaskStateName[]]);

export function isTerminalState(s: TaskStateName): boolean {
  return TASK_STATES[s].terminal;
}

export const TaskStatus = z.looseObject({
  task_id: Id,
  state: TaskState,
  message: str(MESOS_LIMITS.textChars).optional(),
  source: z.enum(['SOURCE_MASTER', 'SOURCE_AGENT', 'SOURCE_EXECUTOR']).optional(),
  reason: z
    .string()
    .regex(/^REASON_[A-Z_]+$/)
    .max(128)
    .optional(),
  data: Base64.optional(),
  agent_id: Id.optional(),
  executor_id: Id.optional(),
  timestamp: z.number().finite().optional(),
  uuid: Base64.optional(),
  healthy: z.boolean().optional(),
  labels: Labels.optional(),
});
export type TaskStatus = z.infer<typeof TaskStatus>;

export const Offer = z.looseObject({
  id: Id,
  framework_id: Id,
  agent_id: Id,
  hostname: z.string().max(MESOS_LIMITS.nameChars),
  resources: list(Resource),
  attributes: list(Attribute).optional(),
  executor_ids: list(Id).optional(),
  allocation_info: z.looseObject({ role: str().optional() }).optional(),
});
export type Offer = z.infer<typeof Offer>;

// --- calls -----------------------------------------------------------------------------------

const OfferIds = list(Id).min(1, { message: 'at least one offer id is required' });
const Roles = z.looseObject({ roles: list(str()).optional() });

const call = <T extends string, S extends z.ZodRawShape>(type: T, shape: S) =>
  z.looseObject({ type: z.literal(type), framework_id: Id, ...shape });

export const SubscribeCall = z
  .looseObject({
    type: z.literal('SUBSCRIBE'),
    framework_id: Id.optional(),
    subscribe: z.looseObject({ framework_info: FrameworkInfo, suppressed_roles: list(str()).optional() }),
  })
  .refine((c) => c.framework_id?.value === c.subscribe.framework_info.id?.value, {
    message: 'framework_id must equal subscribe.framework_info.id when resubscribing',
    path: ['framework_id'],
  });

export const TeardownCall = call('TEARDOWN', {});
export const AcceptCall = call('ACCEPT', {
  accept: z.looseObject({ offer_ids: OfferIds, operations: list(Operation), filters: Filters.optional() }),
});
export const DeclineCall = call('DECLINE', {
  decline: z.looseObject({ offer_ids: OfferIds, filters: Filters.optional() }),
});
export const ReviveCall = call('REVIVE', { revive: Roles.optional() });
export const SuppressCall = call('SUPPRESS', { suppress: Roles.optional() });
export const KillCall = call('KILL', {
  kill: z.looseObject({ task_id: Id, agent_id: Id.optional(), kill_policy: KillPolicy.optional() }),
});
export const AcknowledgeCall = call('ACKNOWLEDGE', {
  acknowledge: z.looseObject({ agent_id: Id, task_id: Id, uuid: Base64.min(1) }),
});
export const ReconcileCall = call('RECONCILE', {
  reconcile: z.looseObject({ tasks: list(z.looseObject({ task_id: Id, agent_id: Id.optional() })) }),
});

/** The call types this module implements; the proto has more (see docs/mesos.md). */
export const SUPPORTED_CALLS = [
  'SUBSCRIBE',
  'TEARDOWN',
  'ACCEPT',
  'DECLINE',
  'REVIVE',
  'SUPPRESS',
  'KILL',
  'ACKNOWLEDGE',
  'RECONCILE',
] as const;

/** Call types of the proto that are recognised but not implemented (answered 501). */
export const UNSUPPORTED_CALLS = [
  'UNKNOWN',
  'ACCEPT_INVERSE_OFFERS',
  'DECLINE_INVERSE_OFFERS',
  'SHUTDOWN',
  'ACKNOWLEDGE_OPERATION_STATUS',
  'RECONCILE_OPERATIONS',
  'MESSAGE',
  'REQUEST',
  'UPDATE_FRAMEWORK',
] as const;

export const Call = z.discriminatedUnion('type', [
  SubscribeCall,
  TeardownCall,
  AcceptCall,
  DeclineCall,
  ReviveCall,
  SuppressCall,
  KillCall,
  AcknowledgeCall,
  ReconcileCall,
]);
export type Call = z.infer<typeof Call>;

// --- events ----------------------------------------------------------------------------------

export const SubscribedEvent = z.looseObject({
  type: z.literal('SUBSCRIBED'),
  subscribed: z.looseObject({
    framework_id: Id,
    heartbeat_interval_seconds: z.number().finite().positive().optional(),
    master_info: z.looseObject({}).optional(),
  }),
});
export const OffersEvent = z.looseObject({
  type: z.literal('OFFERS'),
  offers: z.looseObject({ offers: list(Offer, 100_000) }),
});
export const RescindEvent = z.looseObject({
  type: z.literal('RESCIND'),
  rescind: z.looseObject({ offer_id: Id }),
});
export const UpdateEvent = z.looseObject({
  type: z.literal('UPDATE'),
  update: z.looseObject({ status: TaskStatus }),
});
export const HeartbeatEvent = z.looseObject({ type: z.literal('HEARTBEAT') });
export const ErrorEvent = z.looseObject({
  type: z.literal('ERROR'),
  error: z.looseObject({ message: str(MESOS_LIMITS.textChars) }),
});
export const FailureEvent = z.looseObject({
  type: z.literal('FAILURE'),
  failure: z.looseObject({
    agent_id: Id.optional(),
    executor_id: Id.optional(),
    status: z.number().int().optional(),
  }),
});

export const Event = z.discriminatedUnion('type', [
  SubscribedEvent,
  OffersEvent,
  RescindEvent,
  UpdateEvent,
  HeartbeatEvent,
  ErrorEvent,
  FailureEvent,
]);
export type Event = z.infer<typeof Event>;

/** A zod failure as one line naming each field path and what was expected. */
export function describeIssues(error: z.ZodError, root = 'call'): string {
  return error.issues
    .slice(0, 10)
    .map((i) => `${[root, ...i.path.map(String)].join('.')}: ${i.message}`)
    .join('; ');
}
