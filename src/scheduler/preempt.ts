/**
 * Preemption by tier: a queued task that found no host may have running tasks of lower tiers
 * (larger tier numbers) evicted to make room, when its namespace has preemption enabled.
 *
 * Choice of victims, for each such task in queue order:
 * - only hosts that pass the task's hard constraints, and only running tasks of a lower tier;
 * - never a victim of another namespace whose eviction would take that namespace below its
 *   guaranteed share in a dimension the eviction frees;
 * - the smallest set that, with what is free on the host, lets the task fit (never an eviction
 *   that does not);
 * - among sets of that size, the one whose most important victim is least important (lowest
 *   tier, then youngest, then task id go first), then the next most important, and so on; the
 *   same order picks the host.
 *
 * Nothing is placed: the preemptor stays queued ('preempting') and takes the room once the
 * victims' resources come back as offers. The room is reserved for it within the pass (later
 * preemptors do not count it). Pure: reads the index, never changes it.
 */
import type { HardConstraints } from './constraints.ts';
import { formatAmount } from './explain.ts';
import type { HostIndex, HostSlot } from './host-index.ts';
import type {
  ClusterState,
  Eviction,
  HostFilter,
  ResourceName,
  ResourceRequest,
  RunningTask,
  Task,
  Unplaced,
} from './types.ts';

/** Default of PreemptionConfig.maxPreemptorsPerPass. */
export const MAX_PREEMPTORS_PER_PASS = 32;
/**
 * Steps of the exact smallest-set search per host (the number of a host's candidate victims
 * makes it exponential). Past it, the set is built greedily (least important first, then the
 * ones not needed are given back), which may not be the smallest.
 */
export const VICTIM_SEARCH_BUDGET = 20_000;
/**
 * Default of PreemptionConfig.maxSearchSteps: the work preemption may do in one pass (hosts
 * looked at, victims considered, steps of the set search), so that a cluster of hosts running many
 * small tasks cannot make a pass slow. Past it, the remaining candidates wait for the next pass.
 */
export const MAX_SEARCH_STEPS_PER_PASS = 1_000_000;

const BASE: { field: 'cpuMillis' | 'memoryBytes' | 'diskBytes' | 'gpus'; name: ResourceName }[] = [
  { field: 'cpuMillis', name: 'cpus' },
  { field: 'memoryBytes', name: 'memory' },
  { field: 'diskBytes', name: 'disk' },
  { field: 'gpus', name: 'gpus' },
];

export interface PreemptCandidate {
  task: Task;
  hard: HardConstraints;
  entry: Unplaced;
}

/** How preemption ranks a running task: lowest tier (largest number), then youngest, then id. */
export interface VictimKey {
  id: string;
  tier: number;
  startedAt: number;
}

export interface Victim extends VictimKey {
  run: RunningTask;
  tier: number;
  startedAt: number;
  /** What evicting it frees, per dimension of the preemptor's request. */
  frees: number[];
}

const tierOf = (t: Task): number => t.tier ?? 0;

/** Negative when a is evicted before b: lower tier (larger number), then younger, then id. */
export function evictFirst(a: VictimKey, b: VictimKey): number {
  return b.tier - a.tier || b.startedAt - a.startedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Compares two victim sets (each sorted evict-first). Negative when `a` is the better choice:
 * fewer victims, then, from the most important victim down, a less important one.
 */
export function compareVictimSets(a: readonly VictimKey[], b: readonly VictimKey[]): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = a.length - 1; i >= 0; i--) {
    const c = evictFirst(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return 0;
}

/**
 * The smallest subset of `vs` (sorted evict-first) whose frees cover `need`, and among those the
 * first in colexicographic order: the smallest largest index, then the next. With `vs` sorted
 * evict-first, that is the set compareVictimSets ranks best. `ok` vets a whole set (guarantees).
 */
export function smallestSet(
  vs: readonly Victim[],
  need: readonly number[],
  ok: (set: Victim[]) => boolean,
  budget = VICTIM_SEARCH_BUDGET,
  /** Steps used are added here. */
  meter: { steps: number } = { steps: 0 },
): Victim[] | undefined {
  const n = vs.length;
  const dims = need.length;
  // prefix[d][i]: what vs[0..i) free together in dimension d (for pruning).
  const prefix: number[][] = [];
  for (let d = 0; d < dims; d++) {
    const p = [0];
    for (let i = 0; i < n; i++) p.push(p[i]! + vs[i]!.frees[d]!);
    if (p[n]! < need[d]!) return undefined; // not even all of them together
    prefix.push(p);
  }
  const sum = new Array<number>(dims).fill(0);
  const chosen: number[] = [];
  let steps = 0;
  let exhausted = false;
  const pick = (j: number, hi: number): boolean => {
    meter.steps++;
    if (++steps > budget) {
      exhausted = true;
      return false;
    }
    if (j === 0) {
      for (let d = 0; d < dims; d++) if (sum[d]! < need[d]!) return false;
      return ok(chosen.map((i) => vs[i]!));
    }
    for (let d = 0; d < dims; d++) if (sum[d]! + prefix[d]![hi]! < need[d]!) return false;
    for (let m = j - 1; m < hi; m++) {
      const f = vs[m]!.frees;
      for (let d = 0; d < dims; d++) sum[d]! += f[d]!;
      chosen.push(m);
      if (pick(j - 1, m)) return true;
      chosen.pop();
      for (let d = 0; d < dims; d++) sum[d]! -= f[d]!;
      if (exhausted) return false;
    }
    return false;
  };
  for (let k = 1; k <= n; k++) {
    if (pick(k, n)) return chosen.map((i) => vs[i]!).sort(evictFirst);
    if (exhausted) break;
  }
  if (!exhausted) return undefined;
  // Greedy fallback: least important first until the task fits, then give back, from the most
  // important down, every victim the task does not need.
  const taken: Victim[] = [];
  sum.fill(0);
  const covered = () => sum.every((s, d) => s >= need[d]!);
  for (const v of vs) {
    if (covered()) break;
    taken.push(v);
    for (let d = 0; d < dims; d++) sum[d]! += v.frees[d]!;
  }
  if (!covered()) return undefined;
  for (let i = taken.length - 1; i >= 0; i--) {
    const f = taken[i]!.frees;
    if (f.every((x, d) => sum[d]! - x >= need[d]!)) {
      for (let d = 0; d < dims; d++) sum[d]! -= f[d]!;
      taken.splice(i, 1);
    }
  }
  return ok(taken) ? taken : undefined;
}

function describeNeed(task: Task): string {
  const r = task.resources;
  const parts: string[] = [];
  for (const { field, name } of BASE) {
    if (r[field] > 0) parts.push(`${formatAmount(name, r[field])} ${name}`);
  }
  return parts.join(', ') || 'its ports or extended resources';
}

/**
 * Evictions for the candidates (tasks left does-not-fit, in queue order). Marks each preemptor's
 * entry 'preempting' with its host and victims.
 */
export function planPreemptions(
  index: HostIndex,
  candidates: readonly PreemptCandidate[],
  state: ClusterState,
  filters: readonly HostFilter[],
): Eviction[] {
  const config = state.preemption;
  const namespaces = config?.namespaces;
  const running = state.running;
  if (!namespaces || !running || running.length === 0) return [];
  const eligible = candidates.filter((c) => namespaces[c.task.tenant]?.enabled === true);
  if (eligible.length === 0) return [];
  const limit = Math.max(0, config.maxPreemptorsPerPass ?? MAX_PREEMPTORS_PER_PASS);
  const maxSteps = Math.max(0, config.maxSearchSteps ?? MAX_SEARCH_STEPS_PER_PASS);
  const meter = { steps: 0 };

  // Running tasks by host; those already being evicted are spoken for.
  const byHost = new Map<string, RunningTask[]>();
  const waiting = new Map<string, { hostname: string; victims: string[] }>();
  const usage = new Map<string, ResourceRequest>();
  const usageOf = (tenant: string): ResourceRequest => {
    let u = usage.get(tenant);
    if (!u) {
      const given = state.usage?.[tenant];
      u = given
        ? {
            cpuMillis: given.cpuMillis,
            memoryBytes: given.memoryBytes,
            diskBytes: given.diskBytes,
            gpus: given.gpus,
          }
        : { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
      usage.set(tenant, u);
    }
    return u;
  };
  for (const r of running)
    if (!state.usage?.[r.task.tenant]) add(usageOf(r.task.tenant), r.task.resources, 1);
  for (const r of running) {
    if (r.evictingFor !== undefined) {
      // Leaving: no longer counts towards its namespace's share, and its preemptor waits for it.
      add(usageOf(r.task.tenant), r.task.resources, -1);
      let w = waiting.get(r.evictingFor);
      if (!w) {
        w = { hostname: r.hostname, victims: [] };
        waiting.set(r.evictingFor, w);
      }
      w.victims.push(r.task.id);
      continue;
    }
    let list = byHost.get(r.hostname);
    if (!list) {
      list = [];
      byHost.set(r.hostname, list);
    }
    list.push(r);
  }

  const evictions: Eviction[] = [];
  const taken = new Set<string>();
  /** Per host: what this pass's earlier preemptions freed minus what they reserved, by dimension. */
  const reserved = new Map<HostSlot, Map<string, number>>();
  let tried = 0;
  for (const { task, hard, entry } of eligible) {
    const w = waiting.get(task.id);
    if (w) {
      entry.outcome = 'preempting';
      entry.preemption = w;
      continue;
    }
    if (tried >= limit || meter.steps >= maxSteps) break;
    tried++;
    const tier = tierOf(task);
    const r = task.resources;
    // Dimensions: cpu, memory, disk, GPUs, ports, then each extended scalar the task asks for.
    const scalarNames = r.scalars ? Object.keys(r.scalars).filter((k) => r.scalars![k]! > 0) : [];
    const want = [
      r.cpuMillis,
      r.memoryBytes,
      r.diskBytes,
      r.gpus,
      r.ports ?? 0,
      ...scalarNames.map((k) => r.scalars![k]!),
    ];
    const dimKeys = ['cpu', 'mem', 'disk', 'gpus', 'ports', ...scalarNames.map((k) => `scalar:${k}`)];
    const guaranteeOk = (set: Victim[]): boolean => {
      const freed = new Map<string, ResourceRequest>();
      for (const v of set) {
        const t = v.run.task;
        if (t.tenant === task.tenant) continue;
        const f = freed.get(t.tenant) ?? { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
        add(f, t.resources, 1);
        freed.set(t.tenant, f);
      }
      for (const [tenant, f] of freed) {
        const g = namespaces[tenant]?.guaranteed;
        if (!g) continue;
        const u = usageOf(tenant);
        for (const { field } of BASE) {
          const min = g[field];
          if (typeof min === 'number' && f[field] > 0 && u[field] - f[field] < min) return false;
        }
      }
      return true;
    };
    let best: { slot: HostSlot; set: Victim[] } | undefined;
    for (const [hostname, list] of byHost) {
      meter.steps += 1 + list.length;
      if (meter.steps > maxSteps) break;
      const slot = index.byName.get(hostname);
      if (!slot || !hard.check(slot) || !passes(filters, task, slot)) continue;
      const extra = reserved.get(slot);
      const free = [slot.freeCpu, slot.freeMem, slot.freeDisk, slot.freeGpus, slot.freePorts];
      for (const k of scalarNames) free.push(slot.free.scalars?.[k] ?? 0);
      const need = want.map((x, d) => x - free[d]! - (extra?.get(dimKeys[d]!) ?? 0));
      if (need.every((x) => x <= 0)) continue; // fits without evicting anyone: nothing to do here
      const vs: Victim[] = [];
      for (const run of list) {
        if (taken.has(run.task.id) || tierOf(run.task) <= tier) continue;
        const vr = run.task.resources;
        vs.push({
          run,
          id: run.task.id,
          tier: tierOf(run.task),
          startedAt: run.startedAt ?? run.task.submittedAt,
          frees: [
            vr.cpuMillis,
            vr.memoryBytes,
            vr.diskBytes,
            vr.gpus,
            vr.ports ?? 0,
            ...scalarNames.map((k) => vr.scalars?.[k] ?? 0),
          ],
        });
      }
      if (vs.length === 0) continue;
      vs.sort(evictFirst);
      const set = smallestSet(
        vs,
        need,
        guaranteeOk,
        Math.min(VICTIM_SEARCH_BUDGET, maxSteps - meter.steps),
        meter,
      );
      if (!set) continue;
      // Victims are distinct tasks, so two hosts' sets never compare equal.
      if (!best || compareVictimSets(set, best.set) < 0) best = { slot, set };
    }
    // Out of steps before every host was looked at: a choice among some hosts might not be the
    // best, so this task and the rest wait for the next pass.
    if (meter.steps > maxSteps) break;
    if (!best) continue;
    const { slot, set } = best;
    // The room is the preemptor's: later preemptors in this pass see free + freed - its request.
    let extra = reserved.get(slot);
    if (!extra) {
      extra = new Map();
      reserved.set(slot, extra);
    }
    for (let d = 0; d < want.length; d++) {
      let freed = 0;
      for (const v of set) freed += v.frees[d]!;
      extra.set(dimKeys[d]!, (extra.get(dimKeys[d]!) ?? 0) + freed - want[d]!);
    }
    const victims: string[] = [];
    for (const v of set) {
      const t = v.run.task;
      taken.add(t.id);
      victims.push(t.id);
      add(usageOf(t.tenant), t.resources, -1);
      evictions.push({
        code: 'SCHEDULER_PREEMPTED',
        victimTaskId: t.id,
        victimTenant: t.tenant,
        victimTier: v.tier,
        hostname: slot.hostname,
        preemptorTaskId: task.id,
        preemptorTenant: task.tenant,
        preemptorTier: tier,
        reason:
          `preempted on ${slot.hostname} by task ${task.id} (namespace ${task.tenant}, tier ${tier}; ` +
          `this task: namespace ${t.tenant}, tier ${v.tier}) to make room for ${describeNeed(task)}`,
      });
    }
    entry.outcome = 'preempting';
    entry.preemption = { hostname: slot.hostname, victims };
  }
  return evictions;
}

function add(into: ResourceRequest, r: ResourceRequest, sign: 1 | -1): void {
  into.cpuMillis += sign * r.cpuMillis;
  into.memoryBytes += sign * r.memoryBytes;
  into.diskBytes += sign * r.diskBytes;
  into.gpus += sign * r.gpus;
}

function passes(filters: readonly HostFilter[], task: Task, host: HostSlot): boolean {
  for (const f of filters) {
    try {
      if (f.filter(task, host) !== undefined) return false;
    } catch {
      return false; // a failing plugin refuses the host here; the pass already reported it
    }
  }
  return true;
}
