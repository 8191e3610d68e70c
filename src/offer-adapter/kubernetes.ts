// Kubernetes node capacity as an offer source (operator mode). Each Ready, schedulable node
// without a pressure condition offers its allocatable resources minus the requests of every
// non-terminal Pod bound to it (all Pods of all namespaces, not only ours), minus what this
// controller holds for tasks it placed there whose Pods are not visible yet. Node labels are the
// offer's attributes, its taints travel with it (the scheduler filters on tolerations).
//
// Accounting is incremental: informer events adjust one node's usage, and offers(now) rebuilds
// only the offers of nodes that changed since the last call (1,000-5,000 nodes, 10,000 Pods,
// one call per scheduling pass).
import {
  CoreV1Api,
  type KubeConfig,
  type ListWatch,
  type V1Container,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import { trimmedListWatch } from '../kube/trimmed-list-watch.ts';
import { MANAGED_BY, MANAGED_BY_LABEL, TASK_ANNOTATION } from '../launchers/kubernetes-pod.ts';
import { resourcesFromKubernetes } from './kubernetes-resources.ts';
import { QuantityError } from './quantity.ts';
import type { Offer, ResourceRequest, Resources, Taint } from './types.ts';

/** Node conditions that keep new work off a node when True. */
export const PRESSURE_CONDITIONS = ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'NetworkUnavailable'];

/** Extended scalar counting Pods (from allocatable `pods`): each Pod takes one. */
const PODS = 'pods';

export interface NodeView {
  name: string;
  /** Why no offer is made for it (NotReady, cordoned, pressure), or undefined when usable. */
  unusable: string | undefined;
  allocatable: Resources;
  labels: Record<string, string>;
  taints: Taint[];
}

/** What a node offers to the scheduler, derived from its object. Pure. */
export function nodeView(node: V1Node): NodeView {
  const name = node.metadata?.name ?? '';
  let allocatable: Resources;
  let unusable: string | undefined;
  try {
    allocatable = resourcesFromKubernetes(
      (node.status?.allocatable ?? node.status?.capacity) as Record<string, string> | undefined,
    );
  } catch (err) {
    if (!(err instanceof QuantityError)) throw err;
    allocatable = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
    unusable = `invalid allocatable: ${err.message}`;
  }
  const conditions = node.status?.conditions ?? [];
  const ready = conditions.find((c) => c.type === 'Ready');
  if (unusable === undefined) {
    if (ready?.status !== 'True') unusable = `NotReady (${ready?.reason ?? 'no Ready condition'})`;
    else if (node.spec?.unschedulable) unusable = 'cordoned (spec.unschedulable)';
    else {
      const pressure = conditions.find((c) => PRESSURE_CONDITIONS.includes(c.type) && c.status === 'True');
      if (pressure) unusable = pressure.type;
    }
  }
  const taints: Taint[] = [];
  for (const t of node.spec?.taints ?? []) {
    if (t.effect !== 'NoSchedule' && t.effect !== 'NoExecute' && t.effect !== 'PreferNoSchedule') continue;
    taints.push({ key: t.key, ...(t.value ? { value: t.value } : {}), effect: t.effect });
  }
  return { name, unusable, allocatable, labels: { ...(node.metadata?.labels ?? {}) }, taints };
}

function zero(): Resources {
  return { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
}

function containerRequests(c: V1Container): Resources {
  return resourcesFromKubernetes(c.resources?.requests as Record<string, string> | undefined);
}

function add(into: Resources, r: Resources | ResourceRequest, sign = 1): void {
  into.cpuMillis += sign * r.cpuMillis;
  into.memoryBytes += sign * r.memoryBytes;
  into.diskBytes += sign * r.diskBytes;
  into.gpus += sign * r.gpus;
  if (r.scalars) {
    into.scalars ??= {};
    for (const k in r.scalars) into.scalars[k] = (into.scalars[k] ?? 0) + sign * r.scalars[k]!;
  }
}

function max(into: Resources, r: Resources): void {
  into.cpuMillis = Math.max(into.cpuMillis, r.cpuMillis);
  into.memoryBytes = Math.max(into.memoryBytes, r.memoryBytes);
  into.diskBytes = Math.max(into.diskBytes, r.diskBytes);
  into.gpus = Math.max(into.gpus, r.gpus);
  if (r.scalars) {
    into.scalars ??= {};
    for (const k in r.scalars) into.scalars[k] = Math.max(into.scalars[k] ?? 0, r.scalars[k]!);
  }
}

/**
 * What a Pod takes from its node, as kube-scheduler counts it: the sum of its containers'
 * requests and of its sidecars (init containers with restartPolicy Always), or the largest need
 * of any regular init container (its own requests plus the sidecars started before it) if that
 * is more, plus the Pod's overhead; and one `pods` slot. Pure.
 * @throws QuantityError for an invalid quantity.
 */
export function podRequests(pod: V1Pod): Resources {
  const total = zero();
  for (const c of pod.spec?.containers ?? []) add(total, containerRequests(c));
  const sidecars = zero();
  const init = zero();
  for (const c of pod.spec?.initContainers ?? []) {
    const r = containerRequests(c);
    if (c.restartPolicy === 'Always') {
      add(sidecars, r);
      max(init, sidecars);
    } else {
      const need = zero();
      add(need, sidecars);
      add(need, r);
      max(init, need);
    }
  }
  add(total, sidecars);
  max(total, init);
  if (pod.spec?.overhead) add(total, resourcesFromKubernetes(pod.spec.overhead as Record<string, string>));
  total.scalars ??= {};
  total.scalars[PODS] = 1;
  return total;
}

/** Whether a Pod holds resources on a node: bound and not terminal. */
export function podHoldsNode(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return Boolean(pod.spec?.nodeName) && phase !== 'Succeeded' && phase !== 'Failed';
}

/** A Node as the offer source's cache keeps it: what nodeView reads. Pure. */
export function trimNode(node: V1Node): V1Node {
  const { metadata, spec, status } = node;
  return {
    metadata: { name: metadata?.name, resourceVersion: metadata?.resourceVersion, labels: metadata?.labels },
    spec: { unschedulable: spec?.unschedulable, taints: spec?.taints },
    status: {
      allocatable: status?.allocatable,
      ...(status?.allocatable ? {} : { capacity: status?.capacity }),
      conditions: status?.conditions?.map((c) => ({ type: c.type, status: c.status, reason: c.reason })),
    },
  };
}

/** A Pod as the offer source's cache keeps it: what podRequests, podHoldsNode and the task annotation need. Pure. */
export function trimPodForCapacity(pod: V1Pod): V1Pod {
  const { metadata, spec, status } = pod;
  const task = metadata?.annotations?.[TASK_ANNOTATION];
  return {
    metadata: {
      name: metadata?.name,
      namespace: metadata?.namespace,
      resourceVersion: metadata?.resourceVersion,
      ...(task !== undefined ? { annotations: { [TASK_ANNOTATION]: task } } : {}),
    },
    spec: {
      nodeName: spec?.nodeName,
      containers: (spec?.containers ?? []).map((c) => ({
        name: c.name,
        resources: { requests: c.resources?.requests },
      })),
      initContainers: spec?.initContainers?.map((c) => ({
        name: c.name,
        restartPolicy: c.restartPolicy,
        resources: { requests: c.resources?.requests },
      })),
      overhead: spec?.overhead,
    },
    status: { phase: status?.phase },
  };
}

interface PodEntry {
  node: string;
  req: Resources;
  task: string | undefined;
}

interface Hold {
  node: string | undefined;
  req: ResourceRequest;
  /** The Pod (`ns/name`) that now accounts for it: the hold itself is then not counted. */
  coveredBy: string | undefined;
}

interface NodeEntry {
  view: NodeView | undefined;
  /** Requests of visible Pods plus uncovered holds. */
  used: Resources;
  /** Pods bound to the node, by `ns/name`. */
  pods: Set<string>;
  offer: Offer | undefined;
}

export interface NodeCapacityOptions {
  /** Attributes added to every node's labels (e.g. a cluster name); a label of the same name loses. */
  attributes?: Record<string, string>;
}

/** The key NodeCapacity keeps a Pod under. */
function podId(pod: V1Pod): string {
  return `${pod.metadata?.namespace}/${pod.metadata?.name}`;
}

/**
 * The incremental accounting behind KubernetesOfferSource, fed Node and Pod objects (by the
 * informers, or directly in tests). No I/O.
 */
export class NodeCapacity {
  private readonly nodes = new Map<string, NodeEntry>();
  private readonly pods = new Map<string, PodEntry>();
  /** Visible Pods of each task id (via the task annotation). */
  private readonly podsByTask = new Map<string, Set<string>>();
  private readonly holds = new Map<string, Hold>();
  private readonly dirty = new Set<string>();
  private list: Offer[] = [];
  private listStale = true;
  private seq = 0;
  private readonly extra: Record<string, string>;
  /** Pods whose requests could not be read (counted as nothing), for logs. */
  readonly invalidPods = new Set<string>();

  constructor(opts: NodeCapacityOptions = {}) {
    this.extra = opts.attributes ?? {};
  }

  private entry(name: string): NodeEntry {
    let e = this.nodes.get(name);
    if (!e) {
      e = { view: undefined, used: zero(), pods: new Set(), offer: undefined };
      this.nodes.set(name, e);
    }
    return e;
  }

  private touch(name: string): void {
    this.dirty.add(name);
  }

  upsertNode(node: V1Node): void {
    const view = nodeView(node);
    if (!view.name) return;
    this.entry(view.name).view = view;
    this.touch(view.name);
  }

  deleteNode(name: string): void {
    const e = this.nodes.get(name);
    if (!e) return;
    e.view = undefined;
    if (e.pods.size === 0 && ![...this.holds.values()].some((h) => h.node === name)) this.nodes.delete(name);
    this.touch(name);
  }

  /** A Pod was added or changed: its old accounting goes, its new one (if it holds a node) comes. */
  upsertPod(pod: V1Pod): void {
    const id = podId(pod);
    if (!podHoldsNode(pod)) {
      this.deletePod(id);
      return;
    }
    let req: Resources;
    try {
      req = podRequests(pod);
      this.invalidPods.delete(id);
    } catch (err) {
      if (!(err instanceof QuantityError)) throw err;
      this.invalidPods.add(id);
      req = { ...zero(), scalars: { [PODS]: 1 } };
    }
    const node = pod.spec!.nodeName!;
    const task = pod.metadata?.annotations?.[TASK_ANNOTATION];
    const old = this.pods.get(id);
    if (old && old.node === node && old.task === task && sameResources(old.req, req)) return;
    if (old) this.deletePod(id);
    this.pods.set(id, { node, req, task });
    const e = this.entry(node);
    e.pods.add(id);
    add(e.used, req);
    if (task !== undefined) {
      let s = this.podsByTask.get(task);
      if (!s) {
        s = new Set();
        this.podsByTask.set(task, s);
      }
      s.add(id);
      const h = this.holds.get(task);
      if (h && h.coveredBy === undefined && h.node === node) {
        h.coveredBy = id;
        add(e.used, h.req, -1);
      }
    }
    this.touch(node);
  }

  /** A Pod is gone (deleted, or ended and so left the watch or finished in the launcher's). */
  removePod(pod: V1Pod): void {
    this.deletePod(podId(pod));
  }

  deletePod(id: string): void {
    const p = this.pods.get(id);
    if (!p) return;
    this.pods.delete(id);
    this.invalidPods.delete(id);
    const e = this.entry(p.node);
    e.pods.delete(id);
    add(e.used, p.req, -1);
    if (p.task !== undefined) {
      const s = this.podsByTask.get(p.task);
      s?.delete(id);
      if (s?.size === 0) this.podsByTask.delete(p.task);
      const h = this.holds.get(p.task);
      if (h && h.coveredBy === id) {
        // the Pod ended (or went) before the controller released the task: count the hold
        // again until it does, or until another Pod of the task on that node covers it
        h.coveredBy = this.coveringPod(p.task, h.node);
        if (h.coveredBy === undefined) add(e.used, h.req);
      }
    }
    if (e.view === undefined && e.pods.size === 0) this.nodes.delete(p.node);
    this.touch(p.node);
  }

  private coveringPod(task: string, node: string | undefined): string | undefined {
    for (const id of this.podsByTask.get(task) ?? []) if (this.pods.get(id)?.node === node) return id;
    return undefined;
  }

  /** The controller placed `taskId` on `node`; its Pod may not be visible yet. */
  hold(taskId: string, req: ResourceRequest, node: string | undefined): void {
    this.release(taskId);
    const h: Hold = {
      node,
      req: { ...req, ...(req.scalars ? { scalars: { ...req.scalars } } : {}) },
      coveredBy: undefined,
    };
    if (node !== undefined) {
      h.req.scalars = { ...h.req.scalars, [PODS]: 1 };
      h.coveredBy = this.coveringPod(taskId, node);
      if (h.coveredBy === undefined) {
        add(this.entry(node).used, h.req);
        this.touch(node);
      }
    }
    this.holds.set(taskId, h);
  }

  release(taskId: string): void {
    const h = this.holds.get(taskId);
    if (!h) return;
    this.holds.delete(taskId);
    if (h.node === undefined || h.coveredBy !== undefined) return;
    const e = this.nodes.get(h.node);
    if (!e) return;
    add(e.used, h.req, -1);
    if (e.view === undefined && e.pods.size === 0) this.nodes.delete(h.node);
    this.touch(h.node);
  }

  /** Current offers: one per usable node with room for a Pod. Rebuilds only changed nodes. */
  offers(now: number): Offer[] {
    if (this.dirty.size > 0) {
      for (const name of this.dirty) {
        const e = this.nodes.get(name);
        const before = e?.offer;
        const after = e ? this.buildOffer(e, now) : undefined;
        if (e) e.offer = after;
        if (before !== after) this.listStale = true;
      }
      this.dirty.clear();
    }
    if (this.listStale) {
      this.list = [];
      for (const e of this.nodes.values()) if (e.offer) this.list.push(e.offer);
      this.listStale = false;
    }
    return this.list;
  }

  private buildOffer(e: NodeEntry, now: number): Offer | undefined {
    const v = e.view;
    if (!v || v.unusable !== undefined) return undefined;
    const a = v.allocatable;
    const u = e.used;
    const free: Resources = {
      cpuMillis: Math.max(0, a.cpuMillis - u.cpuMillis),
      memoryBytes: Math.max(0, a.memoryBytes - u.memoryBytes),
      diskBytes: Math.max(0, a.diskBytes - u.diskBytes),
      gpus: Math.max(0, a.gpus - u.gpus),
    };
    for (const k in a.scalars ?? {}) {
      free.scalars ??= {};
      free.scalars[k] = Math.max(0, a.scalars![k]! - (u.scalars?.[k] ?? 0));
    }
    // a node at its Pod limit would refuse (OutOfpods) whatever else it has free
    if (a.scalars?.[PODS] !== undefined && free.scalars![PODS]! <= 0) return undefined;
    const offer: Offer = {
      id: `k8s/${v.name}/${++this.seq}`,
      source: 'kubernetes',
      hostname: v.name,
      agentId: v.name,
      resources: free,
      capacity: a,
      // the operator's attributes win: a node cannot label itself into another offer source
      attributes: { ...v.labels, ...this.extra },
      receivedAt: now,
    };
    if (v.taints.length > 0) offer.taints = v.taints;
    return offer;
  }

  /** Why a node makes no offer (unknown, NotReady, cordoned, pressure, full), or undefined. */
  whyNoOffer(name: string): string | undefined {
    const e = this.nodes.get(name);
    if (!e?.view) return 'unknown node';
    if (e.view.unusable) return e.view.unusable;
    const slots = e.view.allocatable.scalars?.[PODS];
    return slots !== undefined && (e.used.scalars?.[PODS] ?? 0) >= slots
      ? 'no room for another pod'
      : undefined;
  }

  /** What is counted against a node: visible Pods' requests and uncovered holds. */
  usedOn(name: string): Resources | undefined {
    const u = this.nodes.get(name)?.used;
    return u ? { ...u, ...(u.scalars ? { scalars: { ...u.scalars } } : {}) } : undefined;
  }

  /**
   * Allocatable and what is counted against it (Pods and uncovered holds), summed over the usable
   * nodes: the whole that fair shares are measured against.
   */
  totals(): { allocatable: Resources; used: Resources } {
    const allocatable = zero();
    const used = zero();
    for (const e of this.nodes.values()) {
      if (!e.view || e.view.unusable !== undefined) continue;
      add(allocatable, e.view.allocatable);
      add(used, e.used);
    }
    return { allocatable, used };
  }

  /**
   * What each namespace's Pods and uncovered holds take on usable nodes (a Pod id and a step's
   * task id both start with `namespace/`): the per-namespace side of dominant resource fairness.
   */
  usageByNamespace(): Map<string, Resources> {
    const out = new Map<string, Resources>();
    const usable = (node: string | undefined) => {
      const v = node === undefined ? undefined : this.nodes.get(node)?.view;
      return v !== undefined && v.unusable === undefined;
    };
    const charge = (id: string, r: Resources | ResourceRequest) => {
      const ns = id.slice(0, Math.max(0, id.indexOf('/')));
      let u = out.get(ns);
      if (!u) {
        u = zero();
        out.set(ns, u);
      }
      add(u, r);
    };
    for (const [id, p] of this.pods) if (usable(p.node)) charge(id, p.req);
    for (const [taskId, h] of this.holds)
      if (h.coveredBy === undefined && usable(h.node)) charge(taskId, h.req);
    return out;
  }

  get nodeCount(): number {
    let n = 0;
    for (const e of this.nodes.values()) if (e.view) n++;
    return n;
  }
}

function sameResources(a: Resources, b: Resources): boolean {
  if (a.cpuMillis !== b.cpuMillis || a.memoryBytes !== b.memoryBytes) return false;
  if (a.diskBytes !== b.diskBytes || a.gpus !== b.gpus) return false;
  const ka = Object.keys(a.scalars ?? {});
  if (ka.length !== Object.keys(b.scalars ?? {}).length) return false;
  return ka.every((k) => a.scalars![k] === b.scalars?.[k]);
}

export interface OfferSourceLogger {
  warn(obj: object, msg?: string): void;
}

export interface KubernetesOfferSourceOptions extends NodeCapacityOptions {
  kubeConfig: KubeConfig;
  logger?: OfferSourceLogger;
  /** Host of adopted attempts whose placement was not recorded (OfferSource.hostname). */
  hostname?: string;
  /**
   * The step Pods (labelled app.kubernetes.io/managed-by=meson) of these namespaces ('all': of
   * every namespace) reach this source from the launcher's Pod informer (stepPodListener, with
   * trimPodForCapacity's fields kept), so its own Pod watches leave them out: each step Pod event
   * is then sent, and parsed, once. Step Pods of other namespaces (another operator's, on the same
   * nodes) it still watches itself. Absent: this source watches every Pod itself.
   */
  stepPodsFromLauncher?: 'all' | readonly string[];
}

/** What the offer source needs of the launcher's Pod informer (KubernetesLauncher's PodListener). */
export interface StepPodListener {
  onPod(pod: V1Pod): void;
  onPodDeleted(pod: V1Pod): void;
}

/** The selectors of one of the offer source's Pod watches (list and watch alike). */
interface PodSelectors {
  fieldSelector: string;
  labelSelector?: string;
}

/** Non-terminal Pods only: finished Pods hold nothing, and a cluster keeps many of them. */
export const NON_TERMINAL_PODS = 'status.phase!=Succeeded,status.phase!=Failed';

/** Offers from node capacity, kept current by a Node and a Pod informer (all namespaces). */
export class KubernetesOfferSource {
  readonly source = 'kubernetes' as const;
  readonly hostname: string;
  readonly capacity: NodeCapacity;
  private readonly kc: KubeConfig;
  private readonly log: OfferSourceLogger | undefined;
  private informers: ListWatch<V1Node | V1Pod>[] = [];
  private closed = false;
  private readonly stepPodsFromLauncher: 'all' | readonly string[] | undefined;

  constructor(opts: KubernetesOfferSourceOptions) {
    this.kc = opts.kubeConfig;
    this.stepPodsFromLauncher =
      opts.stepPodsFromLauncher === 'all' || (opts.stepPodsFromLauncher?.length ?? 0) > 0
        ? opts.stepPodsFromLauncher
        : undefined;
    this.log = opts.logger;
    this.hostname = opts.hostname ?? 'unknown-node';
    this.capacity = new NodeCapacity(opts);
  }

  /** Lists Nodes and Pods and starts watching them; resolves once both are listed. */
  async start(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const nodes = trimmedListWatch<V1Node>({
      kubeConfig: this.kc,
      path: '/api/v1/nodes',
      listPage: (page) => core.listNode(page),
      trim: trimNode,
    });
    nodes.on('add', (n) => this.capacity.upsertNode(n));
    nodes.on('update', (n) => this.capacity.upsertNode(n));
    nodes.on('delete', (n) => this.capacity.deleteNode(n.metadata?.name ?? ''));
    const watches: [string, ListWatch<V1Node | V1Pod>][] = [['nodes', nodes as ListWatch<V1Node | V1Pod>]];
    for (const [what, selectors] of this.podWatches()) {
      const pods = trimmedListWatch<V1Pod>({
        kubeConfig: this.kc,
        path: '/api/v1/pods',
        listPage: (page) => core.listPodForAllNamespaces({ ...selectors, ...page }),
        trim: trimPodForCapacity,
        ...selectors,
      });
      pods.on('add', (p) => this.capacity.upsertPod(p));
      pods.on('update', (p) => this.capacity.upsertPod(p));
      pods.on('delete', (p) => this.capacity.removePod(p));
      watches.push([what, pods as ListWatch<V1Node | V1Pod>]);
    }
    for (const [what, inf] of watches) {
      let delay = 0;
      inf.on('connect', () => {
        delay = 0;
      });
      inf.on('error', (err) => {
        if (this.closed) return;
        delay = Math.min(Math.max(delay * 2, 500), 30_000);
        this.log?.warn({ err: String(err), retryInMs: delay }, `${what} watch failed; relisting`);
        setTimeout(() => {
          if (!this.closed) inf.start().catch(() => {});
        }, delay).unref();
      });
    }
    this.informers = watches.map(([, inf]) => inf);
    await Promise.all(this.informers.map((inf) => inf.start()));
  }

  /**
   * The Pod watches, by selector. Pods turning Succeeded/Failed leave the field selector: the
   * watch reports them deleted. With step Pods from the launcher: one watch of the Pods not
   * labelled as Meson's (`!=` also selects Pods without the label) and, when the launcher watches
   * some namespaces, one of Meson's Pods in the others.
   */
  private podWatches(): [string, PodSelectors][] {
    const from = this.stepPodsFromLauncher;
    if (from === undefined) return [['pods', { fieldSelector: NON_TERMINAL_PODS }]];
    const others: [string, PodSelectors] = [
      'pods',
      { fieldSelector: NON_TERMINAL_PODS, labelSelector: `${MANAGED_BY_LABEL}!=${MANAGED_BY}` },
    ];
    if (from === 'all') return [others];
    const elsewhere = [NON_TERMINAL_PODS, ...from.map((ns) => `metadata.namespace!=${ns}`)].join(',');
    return [
      others,
      [
        'step pods of other namespaces',
        { fieldSelector: elsewhere, labelSelector: `${MANAGED_BY_LABEL}=${MANAGED_BY}` },
      ],
    ];
  }

  /**
   * Counts the Pods of the launcher's informer (register before it starts; stepPodsFromLauncher).
   * It sees them in every phase: a Pod that ended frees its node here as the field selector's
   * DELETED does for the other Pods.
   */
  stepPodListener(): StepPodListener {
    return {
      onPod: (p) => this.capacity.upsertPod(p),
      onPodDeleted: (p) => this.capacity.removePod(p),
    };
  }

  stop(): void {
    this.closed = true;
    for (const i of this.informers) void i.stop();
    this.informers = [];
  }

  offers(now: number): Offer[] {
    return this.capacity.offers(now);
  }

  /** `node`: where the task was placed (its Pod will appear there). */
  hold(taskId: string, req: ResourceRequest, node?: string): void {
    this.capacity.hold(taskId, req, node);
  }

  release(taskId: string): void {
    this.capacity.release(taskId);
  }
}
