// A task runner for the master-compatible endpoint that runs each LAUNCHed task as a Pod bound
// to the offered node (spec.nodeName: kube-scheduler is bypassed, as for step Pods), and turns
// the Pod's phases back into task states. A LAUNCH_GROUP is ONE Pod with a container per task,
// each task's state read from its own container (see buildGroupPod and groupTaskStates).
//
// - The command runs the safe way: `shell` (Mesos' default) gives `/bin/sh -c <value>` with the
//   value as ONE argument, never spliced into another string; `shell: false` gives the value as
//   the program and `arguments[1..]` as its arguments. The framework is trusted like a workflow
//   author; nothing else reaches the command line.
// - Resources are the task's, rounded UP (as the endpoint counts them), as requests and limits.
// - While the task lives its resources are held on the node in the Kubernetes offer source,
//   under the id the Pod carries in its `meson.dev/task` annotation: the hold counts until the
//   Pod is seen, then the Pod counts instead (never both), so that workflow steps and other
//   frameworks are never offered that capacity.
// - Pod events come from the operator's Pod informer (the step launcher's, over Pods labelled
//   app.kubernetes.io/managed-by=meson); see src/operator/mesos-endpoint.ts.
import { createHash, randomBytes } from 'node:crypto';
import type {
  V1Container,
  V1ContainerPort,
  V1ContainerStatus,
  V1EnvVar,
  V1Pod,
} from '@kubernetes/client-node';
import { literalContainer } from '../kube/kubelet-literal.ts';
import { errorText, statusCode } from '../launchers/kubernetes.ts';
import {
  labelValue,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  podEverRan,
  TASK_ANNOTATION,
} from '../launchers/kubernetes-pod.ts';
import { resourcesToKubernetes } from '../offer-adapter/kubernetes-resources.ts';
import { MESOS_MB } from '../offer-adapter/mesos.ts';
import type { PortRange, ResourceRequest } from '../offer-adapter/types.ts';
import type { LaunchedGroup, LaunchedTask, MesosTaskRunner, TaskReport } from './master.ts';
import { quantitiesFromResources } from './quantities.ts';
import type { Resource, TaskInfo, TaskStateName } from './schemas.ts';

export const MESOS_FRAMEWORK_LABEL = 'meson.dev/mesos-framework';
export const MESOS_TASK_LABEL = 'meson.dev/mesos-task';
/** Exact ids (labels are shortened to 63 characters when needed). */
export const MESOS_FRAMEWORK_ANNOTATION = 'meson.dev/mesos-framework-id';
export const MESOS_TASK_ANNOTATION = 'meson.dev/mesos-task-id';
/** A task group's Pod: its executor (label shortened, annotation exact) and its tasks' ids. */
export const MESOS_EXECUTOR_LABEL = 'meson.dev/mesos-executor';
export const MESOS_EXECUTOR_ANNOTATION = 'meson.dev/mesos-executor-id';
/** JSON array of the group's task ids, in container order (container `task-<i>` runs the i-th). */
export const MESOS_TASK_IDS_ANNOTATION = 'meson.dev/mesos-task-ids';
export const TASK_CONTAINER = 'task';
export const SANDBOX_DIR = '/mnt/mesos/sandbox';
export const DEFAULT_TASK_IMAGE = 'busybox:1.36';
/** The user every task's container runs as (nobody): task Pods are restricted, never root. */
export const TASK_UID = 65534;
/** Most host ports one task may ask for (each becomes a container port). */
export const MAX_TASK_PORTS = 64;

export class TaskPodError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'TaskPodError';
    this.code = code;
  }
}

/**
 * The id under which a task's resources are held on its node, and which its Pod carries in
 * `meson.dev/task`. A colon can never appear in a namespace name, so this never equals a
 * workflow step's `namespace/run/instance`.
 */
export function holdId(frameworkId: string, taskId: string): string {
  return `mesos:${frameworkId}/${taskId}`;
}

/**
 * The id under which a task group's resources are held. `mesos-group:` never begins a task's
 * hold id, and the master lets one executor id run one live group per framework.
 */
export function groupHoldId(frameworkId: string, executorId: string): string {
  return `mesos-group:${frameworkId}/${executorId}`;
}

/** The container of the i-th task of a group. */
export function groupContainerName(i: number): string {
  return `${TASK_CONTAINER}-${i}`;
}

/**
 * The task's resources in the offer model, rounded UP from Mesos units exactly as the endpoint
 * counts them (quantitiesFromResources): the Pod never asks for less than was taken from the offer.
 */
export function taskRequest(task: Pick<TaskInfo, 'resources'>): ResourceRequest {
  return resourcesRequest(task.resources);
}

function resourcesRequest(resources: Resource[]): ResourceRequest {
  const q = quantitiesFromResources(resources);
  const milli = (name: string) => q.scalars.get(name) ?? 0;
  const req: ResourceRequest = {
    cpuMillis: milli('cpus'),
    memoryBytes: Math.ceil((milli('mem') * MESOS_MB) / 1000),
    diskBytes: Math.ceil((milli('disk') * MESOS_MB) / 1000),
    gpus: Math.ceil(milli('gpus') / 1000),
  };
  for (const [name, v] of q.scalars) {
    if (['cpus', 'mem', 'disk', 'gpus', 'pods'].includes(name)) continue;
    req.scalars ??= {};
    req.scalars[name] = Math.ceil(v / 1000);
  }
  return req;
}

/** The host ports a task asked for (its `ports` ranges), expanded, at most MAX_TASK_PORTS. */
export function taskPorts(task: Pick<TaskInfo, 'resources'>): number[] {
  const ranges: PortRange[] = quantitiesFromResources(task.resources).ports;
  const count = ranges.reduce((n, r) => n + r.end - r.begin + 1, 0);
  if (count > MAX_TASK_PORTS)
    throw new TaskPodError(
      'MESOS_TASK_TOO_MANY_PORTS',
      `resources.ports: ${count} ports asked, at most ${MAX_TASK_PORTS} per task`,
    );
  const out: number[] = [];
  for (const r of ranges) for (let p = r.begin; p <= r.end; p++) out.push(p);
  return out;
}

export interface TaskPodOptions {
  namespace: string;
  /** Image of tasks that name none (default busybox:1.36). */
  image?: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Extra labels and annotations (system ones win). */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  terminationGracePeriodSeconds?: number;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function containerImage(task: TaskInfo, fallback: string): string {
  const c = task.container;
  if (!c) return fallback;
  if (c.volumes && c.volumes.length > 0)
    throw new TaskPodError('MESOS_TASK_UNSUPPORTED', 'container.volumes: volumes are not supported');
  const mesosImage = (c.mesos as { image?: { type?: unknown; docker?: { name?: unknown } } } | undefined)
    ?.image;
  const image = c.type === 'DOCKER' ? c.docker?.image : mesosImage?.docker?.name;
  if (image === undefined) return fallback;
  if (typeof image !== 'string' || !/^[^\s]{1,512}$/.test(image))
    throw new TaskPodError('MESOS_TASK_INVALID', 'container: expected an image reference');
  return image;
}

/** Adds two requests (a group's Pod holds the sum of its containers'). */
export function addRequests(a: ResourceRequest, b: ResourceRequest): ResourceRequest {
  const out: ResourceRequest = {
    cpuMillis: a.cpuMillis + b.cpuMillis,
    memoryBytes: a.memoryBytes + b.memoryBytes,
    diskBytes: (a.diskBytes ?? 0) + (b.diskBytes ?? 0),
    gpus: (a.gpus ?? 0) + (b.gpus ?? 0),
  };
  for (const [k, v] of [...Object.entries(a.scalars ?? {}), ...Object.entries(b.scalars ?? {})]) {
    out.scalars ??= {};
    out.scalars[k] = (out.scalars[k] ?? 0) + v;
  }
  return out;
}

/** Who a task's container runs for: its MESOS_* environment. */
interface TaskOwner {
  frameworkId: string;
  agentId: string;
  executorId?: string;
}

/**
 * The container that runs one task's command, the same for a lone task and a group's. Pure.
 * `req` is what it asks for (requests = limits).
 */
function taskContainer(
  task: TaskInfo,
  owner: TaskOwner,
  name: string,
  req: ResourceRequest,
  opts: TaskPodOptions,
): V1Container {
  const cmd = task.command;
  if (!cmd) throw new TaskPodError('MESOS_TASK_INVALID', 'command: expected the command to run');
  if (cmd.uris && cmd.uris.length > 0)
    throw new TaskPodError(
      'MESOS_TASK_UNSUPPORTED',
      'command.uris: fetching URIs is not supported; put what the task needs in its image',
    );
  if (typeof cmd.value !== 'string' || cmd.value === '')
    throw new TaskPodError('MESOS_TASK_INVALID', 'command.value: expected the command to run');
  const container: V1Container = {
    name,
    image: containerImage(task, opts.image ?? DEFAULT_TASK_IMAGE),
    workingDir: SANDBOX_DIR,
    ...(opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {}),
    securityContext: {
      runAsNonRoot: true,
      runAsUser: TASK_UID,
      allowPrivilegeEscalation: false,
      privileged: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [{ name: 'sandbox', mountPath: SANDBOX_DIR }],
  };
  if (cmd.shell === false) {
    // Mesos: execvp(value, arguments), arguments[0] being argv[0]
    container.command = [cmd.value];
    container.args = (cmd.arguments ?? []).slice(1);
  } else {
    // the whole value is one argument of sh -c: nothing is spliced into it
    container.command = ['/bin/sh', '-c', cmd.value];
  }
  const env: V1EnvVar[] = [];
  for (const [i, v] of (cmd.environment?.variables ?? []).entries()) {
    const field = `command.environment.variables[${i}]`;
    if (!ENV_NAME.test(v.name))
      throw new TaskPodError(
        'MESOS_TASK_INVALID',
        `${field}.name: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got ${JSON.stringify(v.name)}`,
      );
    if (v.type === 'SECRET')
      throw new TaskPodError('MESOS_TASK_UNSUPPORTED', `${field}: secret variables are not supported`);
    env.push({ name: v.name, value: v.value ?? '' });
  }
  env.push(
    { name: 'MESOS_TASK_ID', value: task.task_id.value },
    { name: 'MESOS_FRAMEWORK_ID', value: owner.frameworkId },
    { name: 'MESOS_AGENT_ID', value: owner.agentId },
    { name: 'MESOS_SANDBOX', value: SANDBOX_DIR },
  );
  if (owner.executorId !== undefined) env.push({ name: 'MESOS_EXECUTOR_ID', value: owner.executorId });
  container.env = env;
  const resources = resourcesToKubernetes(req);
  if (Object.keys(resources).length > 0) container.resources = { requests: resources, limits: resources };
  const ports: V1ContainerPort[] = taskPorts(task).map((p) => ({
    containerPort: p,
    hostPort: p,
    protocol: 'TCP',
  }));
  if (ports.length > 0) container.ports = ports;
  // Mesos runs the command and environment as written: no $(NAME) expansion, `$$` stays `$$`
  return literalContainer(container);
}

/** A task Pod around its containers: bound to `node`, restricted, never restarted. Pure. */
function taskPodShell(
  name: string,
  node: string,
  opts: TaskPodOptions,
  labels: Record<string, string>,
  annotations: Record<string, string>,
  containers: V1Container[],
): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: opts.namespace,
      labels: { ...opts.labels, [MANAGED_BY_LABEL]: MANAGED_BY, ...labels },
      annotations: { ...opts.annotations, ...annotations },
    },
    spec: {
      nodeName: node,
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
      ...(opts.terminationGracePeriodSeconds !== undefined
        ? { terminationGracePeriodSeconds: opts.terminationGracePeriodSeconds }
        : {}),
      containers,
      volumes: [{ name: 'sandbox', emptyDir: {} }],
    },
  };
}

/**
 * The Pod of one launched task. Pure.
 * @throws TaskPodError (stable code) for a task that cannot run as a Pod.
 */
export function buildTaskPod(t: LaunchedTask, name: string, opts: TaskPodOptions): V1Pod {
  const { task } = t;
  if (task.executor) {
    throw new TaskPodError(
      'MESOS_TASK_UNSUPPORTED',
      'executor: custom executors are not supported; give the task a command',
    );
  }
  const container = taskContainer(task, t, TASK_CONTAINER, taskRequest(task), opts);
  return taskPodShell(
    name,
    t.hostname,
    opts,
    {
      [MESOS_FRAMEWORK_LABEL]: labelValue(t.frameworkId),
      [MESOS_TASK_LABEL]: labelValue(task.task_id.value),
    },
    {
      [MESOS_FRAMEWORK_ANNOTATION]: t.frameworkId,
      [MESOS_TASK_ANNOTATION]: task.task_id.value,
      [TASK_ANNOTATION]: holdId(t.frameworkId, task.task_id.value),
    },
    [container],
  );
}

/**
 * Each container's request in a group's Pod: its task's, the first one also carrying the
 * executor's resources (a Pod cannot declare overhead without a RuntimeClass that has it).
 */
export function groupRequests(g: LaunchedGroup): ResourceRequest[] {
  const executor = resourcesRequest(g.executor.resources ?? []);
  return g.tasks.map((task, i) => (i === 0 ? addRequests(taskRequest(task), executor) : taskRequest(task)));
}

/**
 * The ONE Pod of a task group: a container per task (`task-<i>` runs `g.tasks[i]`, each command
 * handled exactly as a lone task's), bound to the offered node. Pure.
 * @throws TaskPodError (stable code) for a group that cannot run as a Pod.
 */
export function buildGroupPod(g: LaunchedGroup, name: string, opts: TaskPodOptions): V1Pod {
  const executorId = g.executor.executor_id.value;
  const owner: TaskOwner = { frameworkId: g.frameworkId, agentId: g.agentId, executorId };
  const reqs = groupRequests(g);
  const containers = g.tasks.map((task, i) => {
    try {
      return taskContainer(task, owner, groupContainerName(i), reqs[i]!, opts);
    } catch (err) {
      if (!(err instanceof TaskPodError)) throw err;
      throw new TaskPodError(err.code, `task_group.tasks[${i}] (${task.task_id.value}): ${err.message}`);
    }
  });
  return taskPodShell(
    name,
    g.hostname,
    opts,
    {
      [MESOS_FRAMEWORK_LABEL]: labelValue(g.frameworkId),
      [MESOS_EXECUTOR_LABEL]: labelValue(executorId),
    },
    {
      [MESOS_FRAMEWORK_ANNOTATION]: g.frameworkId,
      [MESOS_EXECUTOR_ANNOTATION]: executorId,
      [MESOS_TASK_IDS_ANNOTATION]: JSON.stringify(g.tasks.map((t) => t.task_id.value)),
      [TASK_ANNOTATION]: groupHoldId(g.frameworkId, executorId),
    },
    containers,
  );
}

/** A Pod name for a launch: readable prefix, plus a hash of the ids and a per-launch nonce. */
export function taskPodName(frameworkId: string, taskId: string, nonce: string): string {
  const hash = createHash('sha256')
    .update(JSON.stringify([frameworkId, taskId, nonce]))
    .digest('hex')
    .slice(0, 12);
  const readable = taskId
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 40)
    .replace(/-$/, '');
  return readable ? `mesos-${readable}-${hash}` : `mesos-${hash}`;
}

type TerminatedState = NonNullable<NonNullable<V1ContainerStatus['state']>['terminated']>;

/** Why a task whose container (or Pod) ended other than with exit 0 failed. Pure. */
function failedReport(pod: V1Pod, term: TerminatedState | undefined): TaskReport {
  if (!podEverRan(pod)) {
    const why = [pod.status?.reason, pod.status?.message].filter(Boolean).join(': ');
    return {
      state: 'TASK_FAILED',
      reason: 'REASON_CONTAINER_LAUNCH_FAILED',
      message: `the node refused the pod (${why || 'no reason given'})`,
    };
  }
  if (term?.reason === 'OOMKilled')
    return {
      state: 'TASK_FAILED',
      reason: 'REASON_CONTAINER_LIMITATION_MEMORY',
      message: 'the task used more memory than it asked for (OOMKilled)',
    };
  if (pod.status?.reason === 'Evicted')
    return {
      state: 'TASK_FAILED',
      reason: 'REASON_CONTAINER_PREEMPTED',
      message: `evicted: ${pod.status?.message ?? ''}`.trim(),
    };
  return {
    state: 'TASK_FAILED',
    reason: 'REASON_COMMAND_EXECUTOR_FAILED',
    message:
      term?.exitCode !== undefined
        ? `Command exited with status ${term.exitCode}`
        : `the pod failed${pod.status?.message ? `: ${pod.status.message}` : ''}`,
  };
}

/**
 * What a Pod's status says about its task, or undefined while nothing new is known. Pure.
 * `killed`: a KILL was asked for (a Pod that then ends is TASK_KILLED).
 */
export function podTaskState(pod: V1Pod, killed: boolean): TaskReport | undefined {
  const phase = pod.status?.phase;
  const main = pod.status?.containerStatuses?.find((c) => c.name === TASK_CONTAINER);
  const term = main?.state?.terminated;
  if (phase === 'Succeeded' || phase === 'Failed') {
    if (killed) return { state: 'TASK_KILLED', message: 'killed' };
    if (phase === 'Succeeded') return { state: 'TASK_FINISHED', message: 'Command exited with status 0' };
    return failedReport(pod, term);
  }
  if (phase === 'Running') return { state: 'TASK_RUNNING' };
  // Pending on its node: the image is being pulled, the container created
  return { state: 'TASK_STARTING' };
}

/**
 * What a group's Pod says about each of its tasks (`containers[i]` runs the i-th), or undefined
 * for a task with nothing new. Each task's state is its own container's: terminated with exit 0
 * is TASK_FINISHED, with another code TASK_FAILED, running TASK_RUNNING. `killed`: the group is
 * being killed (a KILL, or a task of it failed): a container that ends from then on is
 * TASK_KILLED. Pure.
 */
export function groupTaskStates(
  pod: V1Pod,
  containers: string[],
  killed: boolean,
): (TaskReport | undefined)[] {
  const phase = pod.status?.phase;
  const ended = phase === 'Succeeded' || phase === 'Failed';
  return containers.map((name): TaskReport | undefined => {
    const cs = pod.status?.containerStatuses?.find((c) => c.name === name);
    const term = cs?.state?.terminated;
    if (term || ended) {
      if (killed) return { state: 'TASK_KILLED', message: 'killed' };
      if (term?.exitCode === 0 || (!term && phase === 'Succeeded'))
        return { state: 'TASK_FINISHED', message: 'Command exited with status 0' };
      return failedReport(pod, term);
    }
    // while killed, only an end is news
    if (killed) return undefined;
    if (cs?.state?.running || (!cs && phase === 'Running')) return { state: 'TASK_RUNNING' };
    return { state: 'TASK_STARTING' };
  });
}

/** The Kubernetes calls the runner makes (the operator's client; a fake in unit tests). */
export interface TaskPodClient {
  create(namespace: string, pod: V1Pod): Promise<void>;
  delete(namespace: string, name: string): Promise<void>;
  /** The informer's copy of a Pod, if it has seen it. */
  cached(namespace: string, name: string): V1Pod | undefined;
}

/** Where the runner holds a task's resources (KubernetesOfferSource / NodeCapacity). */
export interface TaskCapacity {
  hold(taskId: string, req: ResourceRequest, node?: string): void;
  release(taskId: string): void;
}

export interface PodTaskRunnerLogger {
  warn(obj: object, msg: string): void;
}

export interface PodTaskRunnerOptions extends TaskPodOptions {
  client: TaskPodClient;
  capacity: TaskCapacity;
  logger?: PodTaskRunnerLogger;
  /** Attempts of a create that fails with 429, 5xx or no answer (default 5). */
  createAttempts?: number;
  /** Backoff before the first retry, doubled each time (default 200 ms). */
  retryDelayMs?: number;
}

/** One task of a launch (a lone task's Pod has one, a group's one per container). */
interface TaskMember {
  taskId: string;
  report: (r: TaskReport) => void;
  last: TaskStateName | undefined;
  done: boolean;
}

/** One Pod: a lone task's, or a task group's. */
interface TaskPod {
  frameworkId: string;
  holdId: string;
  node: string;
  name: string;
  ports: number[];
  req: ResourceRequest;
  members: TaskMember[];
  /** Container names of a group's tasks (undefined: a lone task). */
  containers?: string[];
  creating: boolean;
  created: boolean;
  killed: boolean;
  done: boolean;
}

const NON_TERMINAL: readonly TaskStateName[] = [
  'TASK_STARTING',
  'TASK_RUNNING',
  'TASK_KILLING',
  'TASK_STAGING',
];

export class PodTaskRunner implements MesosTaskRunner {
  readonly opts: PodTaskRunnerOptions;
  /** By `frameworkId/taskId` (every task of a group) and by Pod name. */
  #tasks = new Map<string, TaskPod>();
  #byPod = new Map<string, TaskPod>();
  /** Live tasks that asked for ports (few): portsInUse runs on every allocation round. */
  #withPorts = new Set<TaskPod>();
  #nonce = randomBytes(4).toString('hex');
  #seq = 0;
  #closed = false;

  constructor(opts: PodTaskRunnerOptions) {
    this.opts = opts;
  }

  launch(t: LaunchedTask, report: (r: TaskReport) => void): void {
    const taskId = t.task.task_id.value;
    const name = taskPodName(t.frameworkId, taskId, `${this.#nonce}.${++this.#seq}`);
    let pod: V1Pod;
    let ports: number[];
    try {
      ports = taskPorts(t.task);
      pod = buildTaskPod(t, name, this.opts);
    } catch (err) {
      if (!(err instanceof TaskPodError)) throw err;
      report({ state: 'TASK_ERROR', reason: 'REASON_TASK_INVALID', message: `${err.code}: ${err.message}` });
      return;
    }
    this.#start(
      {
        frameworkId: t.frameworkId,
        holdId: holdId(t.frameworkId, taskId),
        node: t.hostname,
        name,
        ports,
        req: taskRequest(t.task),
        members: [{ taskId, report, last: undefined, done: false }],
        creating: true,
        created: false,
        killed: false,
        done: false,
      },
      pod,
    );
  }

  /** A task group: ONE Pod, a container per task; a task that cannot run fails them all. */
  launchGroup(g: LaunchedGroup, reports: ((r: TaskReport) => void)[]): void {
    const executorId = g.executor.executor_id.value;
    const name = taskPodName(g.frameworkId, executorId, `${this.#nonce}.${++this.#seq}`);
    let pod: V1Pod;
    let ports: number[];
    try {
      ports = g.tasks.flatMap((task) => taskPorts(task));
      pod = buildGroupPod(g, name, this.opts);
    } catch (err) {
      if (!(err instanceof TaskPodError)) throw err;
      for (const report of reports)
        report({
          state: 'TASK_ERROR',
          reason: 'REASON_TASK_GROUP_INVALID',
          message: `${err.code}: ${err.message}`,
        });
      return;
    }
    this.#start(
      {
        frameworkId: g.frameworkId,
        holdId: groupHoldId(g.frameworkId, executorId),
        node: g.hostname,
        name,
        ports,
        req: groupRequests(g).reduce(addRequests),
        members: g.tasks.map((task, i) => ({
          taskId: task.task_id.value,
          report: reports[i]!,
          last: undefined,
          done: false,
        })),
        containers: g.tasks.map((_, i) => groupContainerName(i)),
        creating: true,
        created: false,
        killed: false,
        done: false,
      },
      pod,
    );
  }

  #start(tp: TaskPod, pod: V1Pod): void {
    for (const m of tp.members) this.#tasks.set(`${tp.frameworkId}/${m.taskId}`, tp);
    this.#byPod.set(tp.name, tp);
    if (tp.ports.length > 0) this.#withPorts.add(tp);
    // held before the Pod exists (synchronously, before the next allocation round)
    this.opts.capacity.hold(tp.holdId, tp.req, tp.node);
    void this.#create(tp, pod);
  }

  /** Kills the task's Pod: for a task of a group, the whole group (as Mesos' default executor). */
  kill(frameworkId: string, taskId: string): void {
    const tp = this.#tasks.get(`${frameworkId}/${taskId}`);
    if (!tp || tp.done) return;
    this.#killPod(tp);
  }

  #killPod(tp: TaskPod): void {
    if (tp.killed) return;
    tp.killed = true;
    if (!tp.creating) void this.#delete(tp);
  }

  /** Host ports taken by live tasks on `node`. */
  portsInUse(node: string): number[] {
    const out: number[] = [];
    for (const tp of this.#withPorts) if (tp.node === node) out.push(...tp.ports);
    return out;
  }

  /** Live tasks (not yet terminal). */
  get size(): number {
    return this.#tasks.size;
  }

  /** What the live task Pods hold, summed (cpu and memory). */
  held(): { cpuMillis: number; memoryBytes: number } {
    let cpuMillis = 0;
    let memoryBytes = 0;
    for (const tp of this.#byPod.values()) {
      cpuMillis += tp.req.cpuMillis;
      memoryBytes += tp.req.memoryBytes;
    }
    return { cpuMillis, memoryBytes };
  }

  /** A Pod was added or changed (from the informer). */
  onPod(pod: V1Pod): void {
    const tp = this.#mine(pod);
    if (!tp) return;
    tp.created = true;
    if (!tp.containers) {
      const r = podTaskState(pod, tp.killed);
      if (!r) return;
      if (tp.killed && (r.state === 'TASK_STARTING' || r.state === 'TASK_RUNNING')) return;
      this.#send(tp, tp.members[0]!, r);
      return;
    }
    const reports = groupTaskStates(pod, tp.containers, tp.killed);
    for (const [i, r] of reports.entries()) if (r) this.#send(tp, tp.members[i]!, r);
    // the default executor's policy: a task that fails kills the rest of its group
    if (!tp.done && tp.members.some((m) => m.last === 'TASK_FAILED' || m.last === 'TASK_KILLED'))
      this.#killPod(tp);
  }

  /** A Pod went away (from the informer). */
  onPodDeleted(pod: V1Pod): void {
    const tp = this.#mine(pod);
    if (!tp || tp.done) return;
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') {
      this.onPod(pod);
      if (tp.done) return;
    }
    for (const m of tp.members) {
      if (tp.killed) this.#send(tp, m, { state: 'TASK_KILLED', message: 'killed' });
      else
        this.#send(tp, m, {
          state: 'TASK_LOST',
          reason: 'REASON_EXECUTOR_TERMINATED',
          message: 'the pod was deleted (by someone else, or with its node)',
        });
    }
  }

  close(): void {
    this.#closed = true;
  }

  #mine(pod: V1Pod): TaskPod | undefined {
    if (pod.metadata?.namespace !== this.opts.namespace) return undefined;
    const tp = this.#byPod.get(pod.metadata?.name ?? '');
    return tp && !tp.done ? tp : undefined;
  }

  /** Every task of the Pod not yet ended gets `r`. */
  #sendAll(tp: TaskPod, r: TaskReport): void {
    for (const m of tp.members) this.#send(tp, m, r);
  }

  /**
   * Sends a task's state once (repeats of the last one are dropped); a terminal one ends the
   * task, and the last task's end ends the Pod.
   */
  #send(tp: TaskPod, m: TaskMember, r: TaskReport): void {
    if (m.done || m.last === r.state) return;
    m.last = r.state;
    if (!NON_TERMINAL.includes(r.state)) {
      m.done = true;
      this.#tasks.delete(`${tp.frameworkId}/${m.taskId}`);
      if (tp.members.every((x) => x.done)) {
        tp.done = true;
        this.#byPod.delete(tp.name);
        this.#withPorts.delete(tp);
        // the capacity goes back before the endpoint hears of it (it offers it again at once)
        this.opts.capacity.release(tp.holdId);
        // a finished task's Pod is removed: nothing else would (it has no owner)
        if (tp.created && !this.#closed) void this.#delete(tp);
      }
    }
    m.report(r);
  }

  async #create(tp: TaskPod, pod: V1Pod): Promise<void> {
    const attempts = this.opts.createAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.opts.client.create(this.opts.namespace, pod);
        break;
      } catch (err) {
        const code = statusCode(err);
        const transient = code === undefined || code === 429 || code >= 500;
        if (transient && attempt < attempts && !this.#closed && !tp.killed) {
          await new Promise((r) => setTimeout(r, (this.opts.retryDelayMs ?? 200) * 2 ** (attempt - 1)));
          continue;
        }
        tp.creating = false;
        if (tp.killed) {
          this.#sendAll(tp, { state: 'TASK_KILLED', message: 'killed before its pod was created' });
          return;
        }
        this.opts.logger?.warn(
          { pod: `${this.opts.namespace}/${tp.name}`, err: errorText(err) },
          'could not create a mesos task pod',
        );
        const invalid = code !== undefined && code >= 400 && code < 500 && code !== 429;
        // a create that timed out may have landed: make sure no Pod runs unseen
        if (!invalid) void this.#delete(tp);
        this.#sendAll(tp, {
          state: invalid ? 'TASK_ERROR' : 'TASK_FAILED',
          reason: invalid ? 'REASON_TASK_INVALID' : 'REASON_CONTAINER_LAUNCH_FAILED',
          message: `could not create pod ${this.opts.namespace}/${tp.name}: ${errorText(err)}`,
        });
        return;
      }
    }
    tp.creating = false;
    tp.created = true;
    if (tp.killed) {
      void this.#delete(tp);
      return;
    }
    // the informer may have seen the Pod before the create returned
    const seen = this.opts.client.cached(this.opts.namespace, tp.name);
    if (seen) this.onPod(seen);
    else for (const m of tp.members) if (m.last === undefined) this.#send(tp, m, { state: 'TASK_STARTING' });
  }

  async #delete(tp: TaskPod): Promise<void> {
    try {
      await this.opts.client.delete(this.opts.namespace, tp.name);
    } catch (err) {
      if (statusCode(err) === 404) {
        if (!tp.done) this.#sendAll(tp, { state: 'TASK_KILLED', message: 'killed' });
        return;
      }
      this.opts.logger?.warn(
        { pod: `${this.opts.namespace}/${tp.name}`, err: errorText(err) },
        'could not delete a mesos task pod',
      );
    }
  }
}
