// The pure half of the Kubernetes launcher: the Pod an attempt runs in (name, labels, security
// context, container), and what a Pod's status says about the attempt (running, finished with
// outputs from the termination message, or lost because the kubelet rejected it).
// No I/O here: src/launchers/kubernetes.ts creates, watches and deletes the Pods.
import { createHash } from 'node:crypto';
import type {
  V1Container,
  V1ContainerStatus,
  V1EnvVar,
  V1ObjectMeta,
  V1Pod,
  V1PodSecurityContext,
  V1SecurityContext,
} from '@kubernetes/client-node';
import type { CopyLimits } from '../../executors/limits.ts';
import {
  type ExecutorStatus,
  type JsonValue,
  type Link,
  parseOutputs,
  type TaskFile,
} from '../../executors/protocol.ts';
import { argumentProblem, parameterEnvironment } from '../../executors/safety.ts';
import {
  DEFAULT_SPARK_UI_URL,
  fillUrlTemplate,
  ownedSparkConf,
  POD_IP_ENV,
  SPARK_UI_LINK,
  sparkOwnershipProblem,
} from '../../executors/spark.ts';
import { dnsName } from '../controller/names.ts';
import { literalContainer } from '../kube/kubelet-literal.ts';
import { resourcesToKubernetes } from '../offer-adapter/kubernetes-resources.ts';
import type { AttemptKey, LaunchRecord, LaunchRequest } from './types.ts';

/** Kubernetes keeps at most this many bytes of a container's termination message. */
export const TERMINATION_MESSAGE_LIMIT = 4096;
export const TERMINATION_MESSAGE_PATH = '/dev/termination-log';

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'meson';
export const RUN_LABEL = 'meson.dev/run';
/** The run's uid, exact (a run name may be shortened in RUN_LABEL): pod GC selects by it. */
export const RUN_UID_LABEL = 'meson.dev/run-uid';
export const WORKFLOW_LABEL = 'meson.dev/workflow';
export const STEP_LABEL = 'meson.dev/step';
export const ATTEMPT_LABEL = 'meson.dev/attempt';
export const LAUNCH_ID_LABEL = 'meson.dev/launch-id';
/** Annotations carry the exact values (labels are shortened to 63 characters when needed). */
export const RUN_ANNOTATION = 'meson.dev/run';
export const INSTANCE_ANNOTATION = 'meson.dev/step-instance';
export const ATTEMPT_ANNOTATION = 'meson.dev/attempt';
/**
 * `namespace/run/instance`: the controller's task id, by which the offer source recognises the
 * Pod of a task whose resources it holds (src/offer-adapter/kubernetes.ts).
 */
export const TASK_ANNOTATION = 'meson.dev/task';
/** Set on Pods that run the executor program (their termination message is an envelope). */
export const EXECUTOR_ANNOTATION = 'meson.dev/executor';
/** The env var through which an executor Pod receives its task (TaskFile JSON). */
export const TASK_ENV = 'MESON_TASK';
export const MAIN_CONTAINER = 'step';
/** Where executor Pods get a writable directory (an emptyDir). */
export const WORK_DIR = '/meson/work';

/**
 * Linux refuses to start a program with one environment string over 128 KiB (MAX_ARG_STRLEN,
 * `NAME=value` included): the largest MESON_TASK an executor Pod can be given.
 */
export const MAX_TASK_ENV_BYTES = 128 * 1024 - `${'MESON_TASK'}=`.length - 1;

export const DEFAULT_EXECUTOR_IMAGE = 'ghcr.io/meson-k8s/executor:0.1.0';
export const DEFAULT_EXECUTOR_COMMAND = ['meson-executor'];
/** The executor program plus Spark (executors/spark.Dockerfile): spark step Pods. */
export const DEFAULT_SPARK_IMAGE = 'ghcr.io/meson-k8s/executor-spark:0.1.0';
/** The service account of spark step Pods (their token requests Spark's executor Pods). */
export const DEFAULT_SPARK_SERVICE_ACCOUNT = 'meson-spark';

/**
 * Spark steps on Kubernetes: spark-submit in client mode, the step Pod as the driver (its
 * executors are owned by it and go with it). See executors/spark.ts.
 */
export interface SparkPodOptions {
  /** Image of spark step Pods (default DEFAULT_SPARK_IMAGE), and by default of Spark's executors. */
  image?: string;
  /**
   * Image of Spark's executor Pods, fixed: a step's conf may then not choose another. Absent:
   * `image`, which a step may override with spark.kubernetes.container.image.
   */
  executorImage?: string;
  /** Service account of spark step Pods, the only step Pods whose token is mounted (default meson-spark). */
  serviceAccountName?: string;
  /** The Spark UI link's URL template, {namespace} and {pod} (default DEFAULT_SPARK_UI_URL); '': no link. */
  uiUrl?: string;
}

export class PodSpecError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PodSpecError';
    this.code = code;
  }
}

/** The controller's task id of an attempt (one queued or running attempt per step instance). */
export function taskIdOf(k: { namespace: string; run: string; instance: string }): string {
  return `${k.namespace}/${k.run}/${k.instance}`;
}

/**
 * The Pod of one launch of one attempt: `<run>-<instance>-a<attempt>-<hash>`, a DNS-1123 label
 * of at most 63 characters. The hash covers the namespace, run, instance, attempt and launch id,
 * so the same launch record always names the same Pod (a repeated create finds it: 409) while
 * a relaunch after a lost attempt (new launch id) gets a new Pod.
 */
export function podName(key: AttemptKey, launchId: string): string {
  const hash = createHash('sha256')
    .update(JSON.stringify([key.namespace, key.run, key.instance, key.attempt, launchId]))
    .digest('hex')
    .slice(0, 10);
  return dnsName(key.run, key.instance, `a${key.attempt}`, hash);
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** `value` when it is a valid label value, else a shortened form with a hash (annotations keep the exact one). */
export function labelValue(value: string): string {
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 8);
  const clean = value
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .slice(0, 54)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return clean === '' ? hash : `${clean}-${hash}`;
}

export interface PodTemplateOptions {
  /** Image of the executor program (shell, spark and copy steps). */
  executorImage?: string;
  /** Command that starts the executor program in that image. */
  executorCommand?: string[];
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  /** Service account of step Pods (default: the namespace's `default`). */
  serviceAccountName?: string;
  /**
   * 'restricted' (default): runAsNonRoot, no privilege escalation, all capabilities dropped,
   * seccomp RuntimeDefault. 'none' leaves the security context to the image and the namespace.
   */
  securityContext?: 'restricted' | 'none';
  /** Grace period a deleted step Pod gets to stop (default 30). */
  terminationGracePeriodSeconds?: number;
  /**
   * Largest task (JSON bytes) passed to an executor Pod in MESON_TASK; a bigger one fails the
   * attempt with POD_TASK_TOO_LARGE. Default and maximum: MAX_TASK_ENV_BYTES (just under 128 KiB).
   */
  maxTaskBytes?: number;
  /** Largest value exported as MESON_PARAM_<name> (default 32768, as MESON_PARAM_ENV_MAX_BYTES). */
  paramEnvMaxBytes?: number;
  /**
   * Copy steps: the object store roots (`s3://bucket/prefix/`) their Pods may reach, the Secret
   * whose keys (AWS_*) become the environment of copy step Pods only, and the copy limits.
   */
  copy?: { roots?: string[]; secretName?: string; limits?: Partial<CopyLimits> };
  /** Extra labels and annotations on every step Pod (system ones win). */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Spark steps (defaults: SparkPodOptions). */
  spark?: SparkPodOptions;
}

/**
 * The links a step's Pod has from the start: for a spark step, the Spark UI of its driver (the
 * Pod itself) from the URL template, values URI-encoded. Pure.
 */
export function launchLinks(
  req: { namespace: string; step: { type: string } },
  pod: string,
  opts: PodTemplateOptions = {},
): Link[] {
  if (req.step.type !== 'spark') return [];
  const template = opts.spark?.uiUrl ?? DEFAULT_SPARK_UI_URL;
  if (template === '') return [];
  return [{ name: SPARK_UI_LINK, url: fillUrlTemplate(template, { namespace: req.namespace, pod }) }];
}

const RESTRICTED_POD: V1PodSecurityContext = {
  runAsNonRoot: true,
  seccompProfile: { type: 'RuntimeDefault' },
};
const RESTRICTED_CONTAINER: V1SecurityContext = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  privileged: false,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A step's env entries as given ({name, value} list or name -> value map), checked. */
function envEntries(field: string, env: unknown): V1EnvVar[] {
  if (env === undefined || env === null) return [];
  const pairs: [unknown, unknown][] = Array.isArray(env)
    ? env.map((e) => [(e as { name?: unknown })?.name, (e as { value?: unknown })?.value])
    : typeof env === 'object'
      ? Object.entries(env as Record<string, unknown>)
      : [];
  if (!Array.isArray(env) && typeof env !== 'object') {
    throw new PodSpecError('POD_BAD_ENV', `${field}: expected a list of {name, value}`);
  }
  return pairs.map(([name, value], i) => {
    if (typeof name !== 'string' || !ENV_NAME.test(name)) {
      throw new PodSpecError(
        'POD_BAD_ENV',
        `${field}[${i}].name: expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got ${JSON.stringify(name)}`,
      );
    }
    if (typeof value !== 'string') {
      throw new PodSpecError('POD_BAD_ENV', `${field}[${i}].value: expected a string`);
    }
    return { name, value };
  });
}

/**
 * The task of an executor that runs away from the server (a Pod, a Mesos task). The executor
 * never reads the step's parameters (they are interpolated already): they are left out, as they
 * may be every run-level value, and travel as MESON_PARAM_<name> variables instead.
 */
export function remoteTaskFile(req: LaunchRequest, record: LaunchRecord): TaskFile {
  const { parameters: _unused, ...step } = req.step;
  return {
    launchId: record.launchId,
    namespace: req.namespace,
    run: req.run,
    workflow: req.workflow,
    instance: req.instance,
    attempt: req.attempt,
    step,
    ...(req.queuedAt !== undefined ? { queuedAt: req.queuedAt } : {}),
    launchedAt: record.launchedAt,
  };
}

/** The Pod's metadata: deterministic name, labels and annotations linking it to its attempt, owner. */
export function podMetadata(
  req: LaunchRequest,
  record: LaunchRecord,
  opts: PodTemplateOptions = {},
): V1ObjectMeta {
  const meta: V1ObjectMeta = {
    name: record.pod ?? podName(req, record.launchId),
    namespace: req.namespace,
    labels: {
      ...opts.labels,
      [MANAGED_BY_LABEL]: MANAGED_BY,
      [RUN_LABEL]: labelValue(req.run),
      [WORKFLOW_LABEL]: labelValue(req.workflow),
      [STEP_LABEL]: labelValue(req.step.name),
      [ATTEMPT_LABEL]: String(req.attempt),
      [LAUNCH_ID_LABEL]: labelValue(record.launchId),
      ...(req.runUid ? { [RUN_UID_LABEL]: labelValue(req.runUid) } : {}),
    },
    annotations: {
      ...opts.annotations,
      [RUN_ANNOTATION]: req.run,
      [INSTANCE_ANNOTATION]: req.instance,
      [ATTEMPT_ANNOTATION]: String(req.attempt),
      [TASK_ANNOTATION]: taskIdOf(req),
    },
  };
  if (req.runUid) {
    meta.ownerReferences = [
      {
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'WorkflowRun',
        name: req.run,
        uid: req.runUid,
        controller: true,
        // the run may be deleted while its pods run: do not block that on them
        blockOwnerDeletion: false,
      },
    ];
  }
  return meta;
}

/**
 * The Pod that runs one launch of an attempt on `record.node` (our scheduler placed it:
 * kube-scheduler is bypassed through spec.nodeName).
 * @throws PodSpecError with a stable code for a step that cannot run as a Pod.
 */
export function buildPod(req: LaunchRequest, record: LaunchRecord, opts: PodTemplateOptions = {}): V1Pod {
  if (!record.node) {
    throw new PodSpecError('POD_NO_NODE', 'the attempt has no node: it must be placed before it is launched');
  }
  const step = req.step;
  const resources = req.resources ? resourcesToKubernetes(req.resources) : {};
  const restricted = (opts.securityContext ?? 'restricted') === 'restricted';
  const container: V1Container = {
    name: MAIN_CONTAINER,
    image: '',
    terminationMessagePath: TERMINATION_MESSAGE_PATH,
    terminationMessagePolicy: 'File',
    ...(opts.imagePullPolicy ? { imagePullPolicy: opts.imagePullPolicy } : {}),
    ...(Object.keys(resources).length > 0 ? { resources: { requests: resources, limits: resources } } : {}),
    ...(restricted ? { securityContext: structuredClone(RESTRICTED_CONTAINER) } : {}),
  };
  const env: V1EnvVar[] = [
    { name: 'MESON_NAMESPACE', value: req.namespace },
    { name: 'MESON_RUN_ID', value: req.run },
    { name: 'MESON_WORKFLOW', value: req.workflow },
    { name: 'MESON_STEP_ID', value: req.instance },
    { name: 'MESON_ATTEMPT', value: String(req.attempt) },
  ];
  const meta = podMetadata(req, record, opts);
  const volumes = [{ name: 'work', emptyDir: {} }];
  container.volumeMounts = [{ name: 'work', mountPath: WORK_DIR }];
  switch (step.type) {
    case 'container': {
      const c = step.container;
      if (!c || typeof c.image !== 'string' || c.image === '') {
        throw new PodSpecError('POD_BAD_STEP', 'container.image: expected an image reference');
      }
      container.image = c.image;
      if (c.command) container.command = [...c.command];
      if (c.args) container.args = [...c.args];
      env.push({ name: 'MESON_OUTPUTS', value: TERMINATION_MESSAGE_PATH });
      env.push(...envEntries('container.env', c.env));
      break;
    }
    case 'shell':
    case 'spark':
    case 'copy': {
      if (step.type === 'shell' && typeof step.shell?.script !== 'string') {
        throw new PodSpecError('POD_BAD_STEP', 'shell.script: expected a string');
      }
      container.image = opts.executorImage ?? DEFAULT_EXECUTOR_IMAGE;
      container.command = [...(opts.executorCommand ?? DEFAULT_EXECUTOR_COMMAND)];
      const task: TaskFile = { ...remoteTaskFile(req, record), cwd: WORK_DIR };
      if (step.type === 'copy') {
        const copy = opts.copy ?? {};
        if (copy.roots?.length) task.copyRoots = [WORK_DIR, ...copy.roots];
        if (copy.limits && Object.keys(copy.limits).length > 0) task.copyLimits = copy.limits;
        // the store's configuration reaches copy Pods only (env entries win over envFrom)
        if (copy.secretName) container.envFrom = [{ secretRef: { name: copy.secretName } }];
      }
      if (step.type === 'spark') {
        const sp = opts.spark ?? {};
        const fixedImage = sp.executorImage !== undefined;
        const taken = sparkOwnershipProblem(step.spark, { fixedImage });
        if (taken) throw new PodSpecError('POD_SPARK_OWNED', `${taken.field}: ${taken.message}`);
        container.image = sp.image ?? DEFAULT_SPARK_IMAGE;
        task.sparkSubmit = ownedSparkConf({
          namespace: req.namespace,
          pod: meta.name!,
          executorImage: sp.executorImage ?? container.image,
          fixedImage,
        });
      }
      const taskJson = JSON.stringify(task);
      const max = Math.min(opts.maxTaskBytes ?? MAX_TASK_ENV_BYTES, MAX_TASK_ENV_BYTES);
      const size = Buffer.byteLength(taskJson);
      if (size > max) {
        throw new PodSpecError(
          'POD_TASK_TOO_LARGE',
          `the step's task takes ${size} bytes, over the ${max} bytes an executor Pod can receive in ${TASK_ENV}: ` +
            'shorten the script (pass large values as files or artifacts)',
        );
      }
      env.push({ name: TASK_ENV, value: taskJson });
      // spark.driver.host: executors connect back to the driver at the Pod's IP. After MESON_TASK:
      // the kubelet expands $(NAME) in a value only for the variables defined before it
      if (step.type === 'spark')
        env.push({ name: POD_IP_ENV, valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
      // values of a shell step reach its script as environment variables (MESON_V_n), never
      // spliced into it: they are the container's environment too
      if (step.type === 'shell') env.push(...envEntries('shell.env', (step.shell as { env?: unknown }).env));
      meta.annotations![EXECUTOR_ANNOTATION] = 'true';
      break;
    }
    default:
      throw new PodSpecError('POD_BAD_STEP', `${step.type} steps do not run in a Pod`);
  }
  // after the Pod's own checks (POD_BAD_ENV), the ones every launcher shares (executors/safety.ts)
  const bad = argumentProblem(step);
  if (bad) throw new PodSpecError('POD_BAD_STEP', `${bad.field}: ${bad.message}`);
  // MESON_PARAM_<name>: the container's own variables, for container steps and executor Pods alike
  for (const [name, value] of Object.entries(parameterEnvironment(step.parameters, opts.paramEnvMaxBytes)))
    env.push({ name, value });
  container.env = env;
  // a spark step's driver requests its executors with its service account's token: the only
  // step Pods with a token (docs/operator.md, "Spark steps")
  const sa =
    step.type === 'spark'
      ? {
          name: opts.spark?.serviceAccountName ?? DEFAULT_SPARK_SERVICE_ACCOUNT,
          automountToken: true,
        }
      : req.serviceAccount;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: meta,
    spec: {
      nodeName: record.node,
      restartPolicy: 'Never',
      automountServiceAccountToken: sa?.automountToken === true,
      enableServiceLinks: false,
      ...(sa?.name || opts.serviceAccountName
        ? { serviceAccountName: sa?.name ?? opts.serviceAccountName }
        : {}),
      ...(opts.terminationGracePeriodSeconds !== undefined
        ? { terminationGracePeriodSeconds: opts.terminationGracePeriodSeconds }
        : {}),
      ...(restricted ? { securityContext: structuredClone(RESTRICTED_POD) } : {}),
      ...(req.tolerations && req.tolerations.length > 0
        ? { tolerations: req.tolerations.map((t) => ({ ...t })) }
        : {}),
      // literal strings: the kubelet's $(NAME) expansion must not touch them (src/kube/kubelet-literal.ts)
      containers: [literalContainer(container)],
      volumes,
    },
  };
}

// --- reading a Pod's status -----------------------------------------------------------------

/** What the executor writes to the termination message (and the launcher reads back). */
export interface TerminationEnvelope {
  outputs?: Record<string, JsonValue>;
  links?: Link[];
  message?: string;
}

export class TerminationMessageError extends Error {
  readonly code = 'POD_TERMINATION_MESSAGE_INVALID';
}

function checkKeys(o: Record<string, unknown>, field: string): void {
  // `__proto__=...` assigned by a key=value parser changes the prototype instead of adding a key
  if (Object.getPrototypeOf(o) !== Object.prototype) {
    throw new TerminationMessageError(`${field}: the key "__proto__" is not allowed`);
  }
  for (const k of Object.keys(o)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') {
      throw new TerminationMessageError(`${field}: the key "${k}" is not allowed`);
    }
  }
}

/**
 * The executor's envelope, checked: `{outputs?: object, links?: [{name, url}], message?: string}`.
 * @throws TerminationMessageError naming the field, for anything else.
 */
export function parseEnvelope(text: string): TerminationEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const hint =
      Buffer.byteLength(text) >= TERMINATION_MESSAGE_LIMIT
        ? ` (it fills the ${TERMINATION_MESSAGE_LIMIT}-byte limit of a termination message: probably truncated)`
        : '';
    throw new TerminationMessageError(`termination message: expected JSON${hint}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TerminationMessageError('termination message: expected a JSON object');
  }
  const o = value as Record<string, unknown>;
  const out: TerminationEnvelope = {};
  if (o.outputs !== undefined) {
    if (typeof o.outputs !== 'object' || o.outputs === null || Array.isArray(o.outputs)) {
      throw new TerminationMessageError('termination message: outputs: expected an object');
    }
    checkKeys(o.outputs as Record<string, unknown>, 'termination message: outputs');
    out.outputs = o.outputs as Record<string, JsonValue>;
  }
  if (o.links !== undefined) {
    if (!Array.isArray(o.links))
      throw new TerminationMessageError('termination message: links: expected a list');
    out.links = o.links.map((l, i) => {
      const x = l as Record<string, unknown>;
      if (typeof x?.name !== 'string' || typeof x?.url !== 'string') {
        throw new TerminationMessageError(`termination message: links[${i}]: expected {name, url}`);
      }
      return { name: x.name, url: x.url };
    });
  }
  if (o.message !== undefined) {
    if (typeof o.message !== 'string')
      throw new TerminationMessageError('termination message: message: expected a string');
    out.message = o.message;
  }
  return out;
}

/** What a Pod's status means for its attempt. */
export type PodOutcome =
  | { kind: 'pending' }
  | { kind: 'running'; status: ExecutorStatus }
  | { kind: 'finished'; status: ExecutorStatus }
  /** The Pod never ran a container (the kubelet rejected it: OutOfcpu, NodeAffinity, …). */
  | { kind: 'lost'; message: string };

function epoch(t: Date | string | undefined): number | undefined {
  if (t === undefined) return undefined;
  const n = new Date(t).getTime();
  return Number.isFinite(n) ? n : undefined;
}

/**
 * A step Pod as the launcher's cache keeps it: what podOutcome and podEverRan read (phase,
 * reason, message, container states with the termination message, the executor annotation),
 * and its run.
 * Pure.
 */
export function trimPodForStatus(pod: V1Pod): V1Pod {
  const { metadata, status } = pod;
  const executor = metadata?.annotations?.[EXECUTOR_ANNOTATION];
  const run = metadata?.annotations?.[RUN_ANNOTATION];
  const containers = (list: V1ContainerStatus[] | undefined) =>
    list?.map((c) => ({ name: c.name, state: c.state, lastState: c.lastState }) as V1ContainerStatus);
  return {
    metadata: {
      name: metadata?.name,
      namespace: metadata?.namespace,
      resourceVersion: metadata?.resourceVersion,
      annotations: {
        ...(executor !== undefined ? { [EXECUTOR_ANNOTATION]: executor } : {}),
        // which run the Pod belongs to (pod GC: src/operator/pod-gc.ts)
        ...(run !== undefined ? { [RUN_ANNOTATION]: run } : {}),
      },
    },
    status: {
      phase: status?.phase,
      reason: status?.reason,
      message: status?.message,
      containerStatuses: containers(status?.containerStatuses),
      initContainerStatuses: containers(status?.initContainerStatuses),
    },
  };
}

/** Whether any container of the Pod ever started (ran or ended). */
export function podEverRan(pod: V1Pod): boolean {
  for (const cs of [...(pod.status?.containerStatuses ?? []), ...(pod.status?.initContainerStatuses ?? [])]) {
    if (cs.state?.running || cs.state?.terminated || cs.lastState?.running || cs.lastState?.terminated)
      return true;
  }
  return false;
}

/** The attempt's state as the Pod shows it. Pure; `now` stamps milestones the Pod does not carry. */
export function podOutcome(
  pod: V1Pod,
  record: LaunchRecord,
  queuedAt: number | undefined,
  now: number,
): PodOutcome {
  const phase = pod.status?.phase;
  const main =
    pod.status?.containerStatuses?.find((c) => c.name === MAIN_CONTAINER) ??
    pod.status?.containerStatuses?.[0];
  const base = (): ExecutorStatus => ({
    launchId: record.launchId,
    pid: 0,
    phase: 'Running',
    milestones: {
      ...(queuedAt !== undefined ? { queued: queuedAt } : {}),
      launched: record.launchedAt,
      ...(main?.state?.running?.startedAt || main?.state?.terminated?.startedAt
        ? { running: epoch(main?.state?.running?.startedAt ?? main?.state?.terminated?.startedAt) }
        : {}),
    },
  });
  if (phase === 'Running') return { kind: 'running', status: base() };
  if (phase !== 'Succeeded' && phase !== 'Failed') return { kind: 'pending' };
  if (phase === 'Failed' && !podEverRan(pod)) {
    const why = [pod.status?.reason, pod.status?.message].filter(Boolean).join(': ');
    return {
      kind: 'lost',
      message: `the node refused the pod (${why || 'no reason given'}); placing it again`,
    };
  }
  const term = main?.state?.terminated;
  const status = base();
  status.milestones.finished = epoch(term?.finishedAt) ?? now;
  if (term?.exitCode !== undefined) status.exitCode = term.exitCode;
  if (term?.signal !== undefined) status.signal = String(term.signal);
  const text = term?.message ?? '';
  const executor = pod.metadata?.annotations?.[EXECUTOR_ANNOTATION] === 'true';
  let envelope: TerminationEnvelope = {};
  let problem: string | undefined;
  try {
    if (executor) {
      if (text.trim() !== '') envelope = parseEnvelope(text);
    } else if (phase === 'Succeeded') {
      const outputs = parseOutputs(text);
      checkKeys(outputs, 'termination message: outputs');
      envelope = { outputs };
    }
  } catch (err) {
    problem = (err as Error).message;
  }
  if (phase === 'Succeeded' && problem === undefined) {
    status.phase = 'Succeeded';
    if (envelope.outputs && Object.keys(envelope.outputs).length > 0) status.outputs = envelope.outputs;
    if (envelope.links && envelope.links.length > 0) status.links = envelope.links;
    return { kind: 'finished', status };
  }
  status.phase = 'Failed';
  if (problem !== undefined) {
    status.message = `the step's termination message is invalid: ${problem}`;
  } else {
    const fromStep = executor ? envelope.message : text.trim() || undefined;
    const code = term?.exitCode !== undefined ? `exit code ${term.exitCode}` : undefined;
    const reason = term?.reason && term.reason !== 'Error' ? term.reason : pod.status?.reason;
    status.message =
      [code, reason, fromStep ?? pod.status?.message].filter(Boolean).join(': ') || 'the pod failed';
  }
  return { kind: 'finished', status };
}
