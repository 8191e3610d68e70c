import type { Offer, PortRange, ResourceRequest, Resources, Taint } from '../offer-adapter/types.ts';

/** Kubernetes node-affinity style requirement on a host attribute / node label. */
export interface AttributeRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  /** For In/NotIn: the allowed/forbidden values; for Gt/Lt: one integer. */
  values?: string[];
}

/** A preference: hosts matching it score higher (blended into fitness), others still qualify. */
export interface SoftConstraint {
  /** 1..100 like Kubernetes' preferredDuringScheduling weights. */
  weight: number;
  requirement: AttributeRequirement;
}

/** A Kubernetes toleration: which taints a task accepts. */
export interface Toleration {
  /** Empty or absent with operator Exists: every key. */
  key?: string;
  /** Default Equal. */
  operator?: 'Equal' | 'Exists';
  value?: string;
  /** Absent: every effect. */
  effect?: Taint['effect'];
}

export interface TaskConstraints {
  /** Every label must equal (Kubernetes nodeSelector). */
  nodeSelector?: Record<string, string>;
  /** Every requirement must hold. */
  attributes?: AttributeRequirement[];
  /**
   * Kubernetes required node affinity (`nodeSelectorTerms`): the host must satisfy every
   * requirement of at least one term. An empty list of terms matches no host, as in Kubernetes.
   */
  nodeAffinity?: AttributeRequirement[][];
  /** Taints the task tolerates; a host with any other NoSchedule/NoExecute taint is refused. */
  tolerations?: Toleration[];
  /** No two tasks of the task's group on one host (including the group's running tasks). */
  uniqueHost?: boolean;
  soft?: SoftConstraint[];
}

export interface Task {
  id: string;
  /** Fair-share unit: the Kubernetes namespace. */
  tenant: string;
  /** Higher first, within a tenant. */
  priority: number;
  /** Lower tiers are served entirely before higher ones (Fenzo's tiers). Default 0. */
  tier?: number;
  resources: ResourceRequest;
  constraints?: TaskConstraints;
  /** Tasks of one foreach (or any set that asks for unique hosts together). */
  groupId?: string;
  /** Epoch ms; FIFO order within equal standing. */
  submittedAt: number;
}

/** A read-only view of a host during a pass, given to filters and fitness functions. */
export interface HostView {
  readonly hostname: string;
  readonly attributes: Readonly<Record<string, string>>;
  /** Free now (offered minus what this pass already placed). */
  readonly free: Readonly<Resources>;
  readonly capacity: Readonly<Resources>;
  /** The host's taints (Kubernetes nodes), absent when it has none. */
  readonly taints?: readonly Taint[] | undefined;
}

/**
 * A hard constraint plugin (Fenzo's ConstraintEvaluator, kube-scheduler's Filter): returns
 * undefined if the task may run on the host, else the reason it may not. Must be a pure function
 * of (task, host).
 */
export interface HostFilter {
  readonly name: string;
  filter(task: Task, host: HostView): string | undefined;
}

/**
 * A fitness plugin (Fenzo's VMTaskFitnessCalculator, kube-scheduler's Score): how well the task
 * fits the host, from 0 (worst) to 1 (best), as if the task were placed there.
 */
export interface FitnessFunction {
  readonly name: string;
  fitness(task: Task, host: HostView): number;
}

export interface SchedulerOptions {
  /** 'binpack' (default: CPU+memory packing), 'spread', or a plugin. */
  fitness?: 'binpack' | 'spread' | FitnessFunction;
  /**
   * Stop looking at more hosts once one scores at least this (0..1). null evaluates every host
   * that can take the task. Default 0.5. Hosts are visited tightest-first for packing (loosest
   * first for spread), so the first good-enough host is usually the best one anyway.
   */
  goodEnough?: number | null;
  /** Share of the score given to soft constraints, for tasks that have them. Default 0.5. */
  softWeight?: number;
  filters?: HostFilter[];
  /** Seed of the deterministic tie-break between equally fit hosts. Default 1. */
  seed?: number;
  /** 'shared' (default) lets any task use a GPU host; 'reserved' keeps GPU hosts for GPU tasks. */
  gpuHosts?: 'shared' | 'reserved';
  /** Per-host detail in unplaced reasons (aggregates are always given). Default true. */
  explainHosts?: boolean;
  /** Injected clock (ms) to time each decision; benchmarks only. */
  decisionClock?: () => number;
}

/** What the cluster already runs, for fair share, quota and unique hosts. */
export interface ClusterState {
  /** Resources held by each tenant's running tasks. */
  usage?: Record<string, ResourceRequest>;
  /** Optional per-tenant limits; a task that would push its tenant past one stays queued. */
  quotas?: Record<string, Partial<ResourceRequest>>;
  /** DRF weights per tenant (default 1). */
  weights?: Record<string, number>;
  /** Total cluster capacity for DRF shares; default: running usage plus everything offered. */
  capacity?: ResourceRequest;
  /** Hosts that running tasks of each group occupy (unique-host groups). */
  groupHosts?: Record<string, string[]>;
  /** Preemption by tier, per namespace (off for every namespace not listed as enabled). */
  preemption?: PreemptionConfig;
  /** Running tasks and their hosts: the possible victims of preemption (only read when it is on). */
  running?: RunningTask[];
}

/** A task running on a host, as preemption sees it. */
export interface RunningTask {
  task: Task;
  hostname: string;
  /** Epoch ms it started; among equal tiers the youngest is evicted first. Default: task.submittedAt. */
  startedAt?: number;
  /**
   * Id of the queued task an earlier pass evicted this one for, while the kill is under way: it is
   * not chosen again, and that preemptor waits for it instead of evicting more.
   */
  evictingFor?: string;
}

/** One namespace's preemption settings. */
export interface NamespacePreemption {
  /** Its queued tasks may evict running tasks of lower tiers (larger tier numbers). Default false. */
  enabled?: boolean;
  /**
   * Resources of its running tasks that preemption by other namespaces never takes: a victim of
   * this namespace is chosen only if, in every dimension the eviction frees, the namespace keeps at
   * least this much running.
   */
  guaranteed?: Partial<Pick<ResourceRequest, 'cpuMillis' | 'memoryBytes' | 'diskBytes' | 'gpus'>>;
}

export interface PreemptionConfig {
  /** By namespace (the task's tenant). */
  namespaces?: Record<string, NamespacePreemption>;
  /** Queued tasks that may look for victims in one pass, in queue order. Default 32. */
  maxPreemptorsPerPass?: number;
  /**
   * Work preemption may do in one pass: hosts looked at plus running tasks considered plus steps
   * of the victim-set search. Default 1,000,000. Past it, the remaining tasks wait a pass.
   */
  maxSearchSteps?: number;
}

/**
 * A running task the controller must kill so that a queued task of a higher tier can run. The
 * victim goes back to its step's retry policy; `reason` is the text to record on the victim step.
 */
export interface Eviction {
  code: 'SCHEDULER_PREEMPTED';
  victimTaskId: string;
  victimTenant: string;
  victimTier: number;
  hostname: string;
  preemptorTaskId: string;
  preemptorTenant: string;
  preemptorTier: number;
  reason: string;
}

export interface Placement {
  taskId: string;
  hostname: string;
  agentId?: string;
  /** All offers of the host (a Mesos ACCEPT of one agent names them all). */
  offerIds: string[];
  resources: ResourceRequest;
  /** Ports assigned from the host's offered ranges. */
  ports: number[];
  /** Score the host had for the task (fitness blended with soft constraints), 0..1. */
  score: number;
}

export type ResourceName = 'cpus' | 'memory' | 'disk' | 'gpus' | 'ports' | `scalar:${string}`;

/** One reason a host could not take a task. */
export type HostReason =
  | { kind: 'insufficient'; resource: ResourceName; requested: number; available: number }
  | {
      kind: 'constraint';
      constraint: 'nodeSelector' | 'attribute' | 'nodeAffinity' | 'taint' | 'uniqueHost' | 'gpu';
      message: string;
    }
  | { kind: 'filter'; filter: string; message: string };

/** Reasons aggregated over hosts: one line a user reads ("cpus: 4,980 of 5,000 hosts lacked ..."). */
export interface ReasonSummary {
  key: string;
  hosts: number;
  totalHosts: number;
  message: string;
}

export type UnplacedOutcome =
  /** No host can take it now (resources or constraints); it stays queued. */
  | 'does-not-fit'
  /** Its tenant's quota would be exceeded; it stays queued. */
  | 'over-quota'
  /** Something is wrong (invalid task, a plugin threw): retrying will not help until fixed. */
  | 'broke'
  /**
   * Lower-tier tasks are being evicted to make room for it (`evictions`, this pass or an earlier
   * one); it stays queued and takes the room once their resources come back as offers.
   */
  | 'preempting';

export interface Unplaced {
  taskId: string;
  outcome: UnplacedOutcome;
  /** Aggregated, readable reasons. */
  reasons: ReasonSummary[];
  /** Every reason per host (when explainHosts). Shared between tasks of the same shape. */
  hosts?: { hostname: string; reasons: HostReason[] }[];
  error?: { code: string; message: string };
  /** Outcome 'preempting': the host being freed for it and the tasks evicted there. */
  preemption?: { hostname: string; victims: string[] };
}

export interface Decline {
  offerId: string;
  hostname: string;
  source: Offer['source'];
  reason: 'expired' | 'rescinded-host' | 'invalid';
  message?: string;
}

export interface PassResult {
  placements: Placement[];
  unplaced: Unplaced[];
  /** Offers to decline through their source. */
  declines: Decline[];
  /** Running tasks to kill for higher-tier queued tasks (empty unless preemption is on). */
  evictions: Eviction[];
  /** Per-decision times in ms when a decisionClock was given. */
  decisionMs?: number[];
}

export interface PassInput {
  tasks: readonly Task[];
  offers: readonly Offer[];
  now: number;
  state?: ClusterState;
  options?: SchedulerOptions;
}

export type { Offer, PortRange, ResourceRequest, Resources, Taint };
