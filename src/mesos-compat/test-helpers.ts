// Test doubles for the master-compatible endpoint: a fixed offer source and a task runner that
// reports TASK_RUNNING then a final state, as the real launchers will.
import type { Offer } from '../offer-adapter/types.ts';
import type { LaunchedGroup, LaunchedTask, MesosOfferSource, MesosTaskRunner, TaskReport } from './master.ts';
import type { TaskStateName } from './schemas.ts';

const GiB = 1024 ** 3;

/** Hosts with fixed free capacity; `hosts` may be changed by a test (capacity taken elsewhere). */
export class StaticOfferSource implements MesosOfferSource {
  hosts: Offer[];
  constructor(hosts: Offer[]) {
    this.hosts = hosts;
  }
  list(): Offer[] {
    return this.hosts;
  }
}

export function host(name: string, cpuMillis = 4000, memoryBytes = 8 * GiB, attributes = {}): Offer {
  return {
    id: `cap-${name}`,
    source: 'kubernetes',
    hostname: name,
    agentId: `agent-${name}`,
    resources: {
      cpuMillis,
      memoryBytes,
      diskBytes: 10 * GiB,
      gpus: 0,
      ports: [{ begin: 31000, end: 31099 }],
    },
    attributes,
  };
}

export interface FakeRunnerOptions {
  /** Final state of every task (default TASK_FINISHED); `hold` keeps tasks running until killed. */
  final?: TaskStateName | 'hold';
  /** Delay before each report, ms (default 0: next macrotask). */
  delayMs?: number;
}

export class FakeTaskRunner implements MesosTaskRunner {
  readonly launched: LaunchedTask[] = [];
  readonly kills: string[] = [];
  readonly groups: LaunchedGroup[] = [];
  #groupOf = new Map<string, string[]>();
  #reporters = new Map<string, (r: TaskReport) => void>();
  readonly opts: FakeRunnerOptions;
  constructor(opts: FakeRunnerOptions = {}) {
    this.opts = opts;
  }

  launch(task: LaunchedTask, report: (r: TaskReport) => void): void {
    this.launched.push(task);
    const key = `${task.frameworkId}/${task.task.task_id.value}`;
    this.#reporters.set(key, report);
    const delay = this.opts.delayMs ?? 0;
    setTimeout(() => {
      report({ state: 'TASK_RUNNING' });
      const final = this.opts.final ?? 'TASK_FINISHED';
      if (final !== 'hold') setTimeout(() => report({ state: final, message: 'done' }), delay);
    }, delay);
  }

  /** Each task of a group reports as a lone task would; a KILL of one kills them all. */
  launchGroup(group: LaunchedGroup, reports: ((r: TaskReport) => void)[]): void {
    this.groups.push(group);
    const keys = group.tasks.map((t) => `${group.frameworkId}/${t.task_id.value}`);
    for (const [i, task] of group.tasks.entries()) {
      this.#groupOf.set(keys[i]!, keys);
      this.launch(
        { frameworkId: group.frameworkId, agentId: group.agentId, hostname: group.hostname, task },
        reports[i]!,
      );
    }
  }

  kill(frameworkId: string, taskId: string): void {
    const key = `${frameworkId}/${taskId}`;
    this.kills.push(key);
    for (const k of this.#groupOf.get(key) ?? [key])
      this.#reporters.get(k)?.({ state: 'TASK_KILLED', message: 'killed' });
  }
}
