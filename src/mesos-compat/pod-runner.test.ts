import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { asKubeletRuns } from '../../test/support/kubelet.ts';
import { NodeCapacity } from '../offer-adapter/kubernetes.ts';
import { KubernetesTaskOffers, stepCompetition } from './kubernetes-offers.ts';
import type { LaunchedGroup, LaunchedTask, TaskReport } from './master.ts';
import {
  buildGroupPod,
  buildTaskPod,
  groupHoldId,
  groupTaskStates,
  holdId,
  MAX_TASK_PORTS,
  PodTaskRunner,
  podTaskState,
  type TaskPodClient,
  TaskPodError,
  taskPodName,
  taskRequest,
} from './pod-runner.ts';
import type { TaskInfo } from './schemas.ts';

const NS = 'mesos-tasks';

function taskInfo(over: Partial<TaskInfo> = {}): TaskInfo {
  return {
    name: 't',
    task_id: { value: 't1' },
    agent_id: { value: 'node-a' },
    resources: [
      { name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } },
      { name: 'mem', type: 'SCALAR', scalar: { value: 32 } },
    ],
    command: { value: 'echo hi' },
    ...over,
  } as TaskInfo;
}

function launched(over: Partial<TaskInfo> = {}, frameworkId = 'fw-1'): LaunchedTask {
  return { frameworkId, agentId: 'node-a', hostname: 'node-a', task: taskInfo(over) };
}

function pod(over: Partial<TaskInfo> = {}): V1Pod {
  return buildTaskPod(launched(over), 'mesos-t1-0', { namespace: NS });
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof TaskPodError) return `${err.code}: ${err.message}`;
    throw err;
  }
  return 'no error';
}

describe('buildTaskPod: the command runs the safe way', () => {
  it('passes a shell command as ONE argument of sh -c, whatever it holds', () => {
    for (const value of [
      'echo hi; rm -rf /',
      'echo $(id) `whoami` && exit 3',
      'it\'s "quoted"\nsecond line',
      '-c',
      '--help',
    ]) {
      const c = asKubeletRuns(pod({ command: { value } }).spec!.containers[0]!);
      expect(c.command).toEqual(['/bin/sh', '-c', value]);
      expect(c.args).toBeUndefined();
    }
  });

  it('runs shell: false as the program with arguments[1..], nothing split or joined', () => {
    const c = asKubeletRuns(
      pod({
        command: { shell: false, value: '/usr/bin/env', arguments: ['env', 'A=1; echo pwned', '$(id)'] },
      }).spec!.containers[0]!,
    );
    expect(c.command).toEqual(['/usr/bin/env']);
    expect(c.args).toEqual(['A=1; echo pwned', '$(id)']);
    const spaced = asKubeletRuns(
      pod({ command: { shell: false, value: '/bin/my prog' } }).spec!.containers[0]!,
    );
    expect(spaced.command).toEqual(['/bin/my prog']);
    expect(spaced.args).toEqual([]);
  });

  it('refuses what it cannot run, with the field and a stable code', () => {
    expect(codeOf(() => pod({ command: { value: '' } }))).toMatch(/^MESOS_TASK_INVALID: command.value/);
    expect(codeOf(() => pod({ command: { value: 'x', uris: [{ value: 'http://e/x' }] } }))).toMatch(
      /^MESOS_TASK_UNSUPPORTED: command.uris/,
    );
    expect(
      codeOf(() =>
        pod({ command: undefined, executor: { executor_id: { value: 'e' } } } as Partial<TaskInfo>),
      ),
    ).toMatch(/^MESOS_TASK_UNSUPPORTED: executor/);
    expect(
      codeOf(() =>
        pod({ container: { type: 'DOCKER', docker: { image: 'x' }, volumes: [{ container_path: '/' }] } }),
      ),
    ).toMatch(/^MESOS_TASK_UNSUPPORTED: container.volumes/);
    expect(codeOf(() => pod({ container: { type: 'DOCKER', docker: { image: 'a b' } } }))).toMatch(
      /^MESOS_TASK_INVALID: container/,
    );
  });

  it('takes the environment by name and value only: bad names and secrets are refused', () => {
    for (const name of ['A=B', '1X', 'PATH;id', '', 'A B', 'Ä']) {
      expect(
        codeOf(() => pod({ command: { value: 'x', environment: { variables: [{ name, value: 'v' }] } } })),
      ).toMatch(/^MESOS_TASK_INVALID: command.environment.variables\[0\].name/);
    }
    expect(
      codeOf(() =>
        pod({ command: { value: 'x', environment: { variables: [{ name: 'S', type: 'SECRET' }] } } }),
      ),
    ).toMatch(/^MESOS_TASK_UNSUPPORTED/);
    const { env } = asKubeletRuns(
      pod({
        command: {
          value: 'x',
          environment: {
            variables: [
              { name: 'GREETING', value: '$(id); `x`' },
              // Mesos does not expand: a variable cannot read another one's value
              { name: 'ECHO', value: '$(GREETING) $$' },
            ],
          },
        },
      }).spec!.containers[0]!,
    );
    expect(env.GREETING).toBe('$(id); `x`');
    expect(env.ECHO).toBe('$(GREETING) $$');
    expect(env.MESOS_TASK_ID).toBe('t1');
  });

  it('uses the task image (DOCKER or MESOS), else the default', () => {
    expect(pod().spec!.containers[0]!.image).toBe('busybox:1.36');
    expect(
      pod({ container: { type: 'DOCKER', docker: { image: 'alpine:3' } } }).spec!.containers[0]!.image,
    ).toBe('alpine:3');
    const mesos = { type: 'MESOS', mesos: { image: { type: 'DOCKER', docker: { name: 'debian:12' } } } };
    expect(pod({ container: mesos } as Partial<TaskInfo>).spec!.containers[0]!.image).toBe('debian:12');
  });

  it('binds to the offered node, restricted, no token, labelled by framework and task', () => {
    const p = buildTaskPod(
      launched(
        { task_id: { value: 'Task/With Odd:Chars' } },
        'framework id with spaces/and/slashes'.repeat(3),
      ),
      'x',
      { namespace: NS, labels: { 'app.kubernetes.io/managed-by': 'someone-else' } },
    );
    expect(p.spec!.nodeName).toBe('node-a');
    expect(p.spec!.automountServiceAccountToken).toBe(false);
    expect(p.spec!.containers[0]!.securityContext).toMatchObject({
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    const labels = p.metadata!.labels!;
    expect(labels['app.kubernetes.io/managed-by']).toBe('meson');
    for (const v of Object.values(labels)) expect(v).toMatch(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/);
    for (const v of Object.values(labels)) expect(v.length).toBeLessThanOrEqual(63);
    expect(p.metadata!.annotations!['meson.dev/mesos-task-id']).toBe('Task/With Odd:Chars');
    expect(p.metadata!.annotations!['meson.dev/task']).toBe(
      holdId('framework id with spaces/and/slashes'.repeat(3), 'Task/With Odd:Chars'),
    );
  });

  it('names Pods as DNS labels whatever the task id, distinct per launch', () => {
    for (const id of ['../../etc/passwd', 'UPPER', 'ü'.repeat(80), '-', 'a'.repeat(300)]) {
      const a = taskPodName('fw', id, 'n1');
      expect(a).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(a.length).toBeLessThanOrEqual(63);
      expect(taskPodName('fw', id, 'n2')).not.toBe(a);
    }
  });
});

describe('resources: rounded up, as the endpoint counted them', () => {
  it('gives the Pod at least what the offer lost', () => {
    const req = taskRequest(
      taskInfo({
        resources: [
          { name: 'cpus', type: 'SCALAR', scalar: { value: 0.0001 } },
          { name: 'mem', type: 'SCALAR', scalar: { value: 0.0001 } },
          { name: 'disk', type: 'SCALAR', scalar: { value: 1.5 } },
        ],
      }),
    );
    expect(req.cpuMillis).toBe(1);
    // 0.001 MB (the thousandth it rounds up to) = 1048.576 bytes: 1049
    expect(req.memoryBytes).toBe(1049);
    expect(req.diskBytes).toBe(1.5 * 1024 * 1024);
    const c = pod().spec!.containers[0]!;
    expect(c.resources).toEqual({
      requests: { cpu: '100m', memory: '32Mi' },
      limits: { cpu: '100m', memory: '32Mi' },
    });
  });

  it('maps asked ports to host ports, and refuses more than MAX_TASK_PORTS', () => {
    const ports = (begin: number, end: number) => [
      { name: 'cpus', type: 'SCALAR', scalar: { value: 0.1 } },
      { name: 'ports', type: 'RANGES', ranges: { range: [{ begin, end }] } },
    ];
    const c = pod({ resources: ports(31000, 31001) } as Partial<TaskInfo>).spec!.containers[0]!;
    expect(c.ports).toEqual([
      { containerPort: 31000, hostPort: 31000, protocol: 'TCP' },
      { containerPort: 31001, hostPort: 31001, protocol: 'TCP' },
    ]);
    expect(
      codeOf(() => pod({ resources: ports(31000, 31000 + MAX_TASK_PORTS) } as Partial<TaskInfo>)),
    ).toMatch(/^MESOS_TASK_TOO_MANY_PORTS/);
  });
});

describe('podTaskState: pod phases as task states', () => {
  const withStatus = (status: V1Pod['status']): V1Pod => ({ ...pod(), status });
  const ran = { name: 'task', state: { terminated: { exitCode: 3, reason: 'Error' } } };
  it.each([
    [{ phase: 'Pending' }, false, 'TASK_STARTING', undefined],
    [{ phase: 'Running' }, false, 'TASK_RUNNING', undefined],
    [{ phase: 'Succeeded' }, false, 'TASK_FINISHED', undefined],
    [{ phase: 'Failed', containerStatuses: [ran] }, false, 'TASK_FAILED', 'REASON_COMMAND_EXECUTOR_FAILED'],
    [{ phase: 'Failed', reason: 'OutOfcpu' }, false, 'TASK_FAILED', 'REASON_CONTAINER_LAUNCH_FAILED'],
    [
      {
        phase: 'Failed',
        containerStatuses: [{ name: 'task', state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }],
      },
      false,
      'TASK_FAILED',
      'REASON_CONTAINER_LIMITATION_MEMORY',
    ],
    [
      { phase: 'Failed', reason: 'Evicted', containerStatuses: [ran] },
      false,
      'TASK_FAILED',
      'REASON_CONTAINER_PREEMPTED',
    ],
    [{ phase: 'Failed', containerStatuses: [ran] }, true, 'TASK_KILLED', undefined],
    [{ phase: 'Succeeded' }, true, 'TASK_KILLED', undefined],
  ])('%j (killed %s) is %s %s', (status, killed, state, reason) => {
    const r = podTaskState(withStatus(status as V1Pod['status']), killed);
    expect(r?.state).toBe(state);
    expect(r?.reason).toBe(reason);
  });

  it('says the exit status as Mesos does', () => {
    expect(
      podTaskState(withStatus({ phase: 'Failed', containerStatuses: [ran] } as V1Pod['status']), false)
        ?.message,
    ).toBe('Command exited with status 3');
  });
});

// --- the runner, with a fake client and the real capacity view ---------------------------------

function node(name: string): V1Node {
  return {
    metadata: { name, labels: { zone: 'z1' } },
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: '10' },
      conditions: [{ type: 'Ready', status: 'True' }],
    },
  };
}

class FakeClient implements TaskPodClient {
  created: V1Pod[] = [];
  deleted: string[] = [];
  failCreate: { code: number; times: number } | undefined;
  createGate: Promise<void> | undefined;
  cache = new Map<string, V1Pod>();
  async create(_ns: string, p: V1Pod): Promise<void> {
    await this.createGate;
    if (this.failCreate && this.failCreate.times-- > 0)
      throw Object.assign(new Error(`HTTP ${this.failCreate.code}`), { code: this.failCreate.code });
    this.created.push(p);
  }
  async delete(_ns: string, name: string): Promise<void> {
    this.deleted.push(name);
  }
  cached(_ns: string, name: string): V1Pod | undefined {
    return this.cache.get(name);
  }
}

function setup() {
  const capacity = new NodeCapacity();
  capacity.upsertNode(node('node-a'));
  const client = new FakeClient();
  const runner = new PodTaskRunner({ namespace: NS, client, capacity, retryDelayMs: 1 });
  const reports: TaskReport[] = [];
  const tick = () => new Promise((r) => setTimeout(r, 5));
  return { capacity, client, runner, reports, tick };
}

function phase(p: V1Pod, ph: string, extra: Partial<NonNullable<V1Pod['status']>> = {}): V1Pod {
  return { ...p, status: { phase: ph, ...extra } };
}

describe('PodTaskRunner', () => {
  it('holds the task on its node at once, then counts its Pod instead: never both', async () => {
    const { capacity, client, runner, reports, tick } = setup();
    runner.launch(launched(), (r) => reports.push(r));
    // held synchronously, before the Pod exists: 100m, 32Mi and a Pod slot
    expect(capacity.usedOn('node-a')).toMatchObject({
      cpuMillis: 100,
      memoryBytes: 32 * 2 ** 20,
      scalars: { pods: 1 },
    });
    await tick();
    const created = client.created[0]!;
    expect(reports.map((r) => r.state)).toEqual(['TASK_STARTING']);
    // the Pod appears (the offer source's informer): the same amount, counted once
    capacity.upsertPod(phase(created, 'Running'));
    expect(capacity.usedOn('node-a')).toMatchObject({
      cpuMillis: 100,
      memoryBytes: 32 * 2 ** 20,
      scalars: { pods: 1 },
    });
    runner.onPod(phase(created, 'Running'));
    runner.onPod(phase(created, 'Running')); // a repeat says nothing new
    runner.onPod(phase(created, 'Succeeded'));
    expect(reports.map((r) => r.state)).toEqual(['TASK_STARTING', 'TASK_RUNNING', 'TASK_FINISHED']);
    // terminal: the hold goes; the finished Pod leaves the view and is deleted
    capacity.upsertPod(phase(created, 'Succeeded'));
    expect(capacity.usedOn('node-a')).toMatchObject({ cpuMillis: 0, memoryBytes: 0 });
    await tick();
    expect(client.deleted).toEqual([created.metadata!.name]);
    expect(runner.size).toBe(0);
  });

  it('the endpoint offers what the view leaves, minus ports of live tasks; steps share the rest', async () => {
    const { capacity, runner, tick } = setup();
    const offers = new KubernetesTaskOffers({ capacity, portsInUse: (n) => runner.portsInUse(n) });
    const before = offers.list()[0]!;
    expect(before.resources.cpuMillis).toBe(4000);
    expect(before.resources.ports).toEqual([{ begin: 31000, end: 32000 }]);
    runner.launch(
      launched({
        resources: [
          { name: 'cpus', type: 'SCALAR', scalar: { value: 1 } },
          { name: 'ports', type: 'RANGES', ranges: { range: [{ begin: 31005, end: 31005 }] } },
        ],
      } as Partial<TaskInfo>),
      () => {},
    );
    await tick();
    const after = offers.list()[0]!;
    expect(after.resources.cpuMillis).toBe(3000);
    expect(after.resources.scalars?.pods).toBe(9);
    expect(after.resources.ports).toEqual([
      { begin: 31000, end: 31004 },
      { begin: 31006, end: 32000 },
    ]);
    expect(offers.total().cpuMillis).toBe(4000);
    // a step placed on the node (held, Pod not created yet): 1 of 4 cpus is the steps' share
    let queued: string[] = [];
    const steps = stepCompetition({
      capacity,
      tasksHeld: () => runner.held(),
      taskNamespace: NS,
      queuedNamespaces: () => queued,
    });
    capacity.hold('ns/run/step', { cpuMillis: 1000, memoryBytes: 0, diskBytes: 0, gpus: 0 }, 'node-a');
    expect(steps.waiting()).toBe(false);
    queued = ['ns'];
    expect(steps.waiting()).toBe(true);
    expect(steps.share()).toBeCloseTo(0.25);
    // DRF across namespaces: a waiting namespace that holds nothing sets the bar at 0; the task
    // namespace's own usage is the frameworks', not a namespace's
    queued = ['ns', 'idle'];
    expect(steps.share()).toBe(0);
    queued = [NS];
    expect(steps.share()).toBe(0);
    expect(offers.list()[0]!.resources.cpuMillis).toBe(2000);
  });

  it('leaves out nodes whose taints a task cannot tolerate', () => {
    const capacity = new NodeCapacity();
    const tainted = node('node-t');
    tainted.spec = { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] };
    capacity.upsertNode(tainted);
    capacity.upsertNode(node('node-a'));
    const offers = new KubernetesTaskOffers({ capacity, portsInUse: () => [] });
    expect(offers.list().map((o) => o.hostname)).toEqual(['node-a']);
  });

  it('KILL deletes the Pod: TASK_KILLED when it goes, and the hold is released', async () => {
    const { capacity, client, runner, reports, tick } = setup();
    runner.launch(launched(), (r) => reports.push(r));
    await tick();
    const p = client.created[0]!;
    runner.onPod(phase(p, 'Running'));
    runner.kill('fw-1', 't1');
    await tick();
    expect(client.deleted).toEqual([p.metadata!.name]);
    runner.onPod(phase(p, 'Running')); // still running while it stops: nothing new
    runner.onPodDeleted(phase(p, 'Running'));
    expect(reports.map((r) => r.state)).toEqual(['TASK_STARTING', 'TASK_RUNNING', 'TASK_KILLED']);
    expect(capacity.usedOn('node-a')?.cpuMillis).toBe(0);
  });

  it('a KILL before the create returns deletes the Pod once it exists', async () => {
    const { client, runner, reports, tick } = setup();
    let open!: () => void;
    client.createGate = new Promise((r) => {
      open = r;
    });
    runner.launch(launched(), (r) => reports.push(r));
    runner.kill('fw-1', 't1');
    open();
    await tick();
    expect(client.deleted).toEqual([client.created[0]!.metadata!.name]);
    runner.onPodDeleted(phase(client.created[0]!, 'Pending'));
    expect(reports.map((r) => r.state)).toEqual(['TASK_KILLED']);
  });

  it('a Pod deleted by someone else is TASK_LOST', async () => {
    const { client, runner, reports, tick } = setup();
    runner.launch(launched(), (r) => reports.push(r));
    await tick();
    runner.onPodDeleted(phase(client.created[0]!, 'Running'));
    expect(reports.at(-1)).toMatchObject({ state: 'TASK_LOST', reason: 'REASON_EXECUTOR_TERMINATED' });
  });

  it('a refused create is TASK_ERROR; a failing API server, after retries, TASK_FAILED; holds go', async () => {
    const { capacity, client, runner, reports, tick } = setup();
    client.failCreate = { code: 422, times: 1 };
    runner.launch(launched(), (r) => reports.push(r));
    await tick();
    expect(reports.at(-1)).toMatchObject({ state: 'TASK_ERROR', reason: 'REASON_TASK_INVALID' });
    expect(capacity.usedOn('node-a')?.cpuMillis).toBe(0);
    client.failCreate = { code: 503, times: 5 };
    runner.launch(launched({ task_id: { value: 't2' } }), (r) => reports.push(r));
    await new Promise((r) => setTimeout(r, 100));
    expect(reports.at(-1)).toMatchObject({ state: 'TASK_FAILED', reason: 'REASON_CONTAINER_LAUNCH_FAILED' });
    expect(capacity.usedOn('node-a')?.cpuMillis).toBe(0);
    // 503 four times then success: the task runs
    client.failCreate = { code: 503, times: 4 };
    runner.launch(launched({ task_id: { value: 't3' } }), (r) => reports.push(r));
    await new Promise((r) => setTimeout(r, 100));
    expect(client.created).toHaveLength(1);
  });

  it('a task it cannot build is TASK_ERROR without a Pod or a hold', () => {
    const { capacity, client, runner, reports } = setup();
    runner.launch(launched({ command: { value: 'x', uris: [{ value: 'http://x' }] } }), (r) =>
      reports.push(r),
    );
    expect(reports).toEqual([
      expect.objectContaining({ state: 'TASK_ERROR', reason: 'REASON_TASK_INVALID' }),
    ]);
    expect(client.created).toEqual([]);
    expect(capacity.usedOn('node-a')?.cpuMillis).toBe(0);
  });

  it('ignores Pods of other namespaces and names', async () => {
    const { client, runner, reports, tick } = setup();
    runner.launch(launched(), (r) => reports.push(r));
    await tick();
    const p = client.created[0]!;
    runner.onPod({ ...phase(p, 'Succeeded'), metadata: { ...p.metadata, namespace: 'other' } });
    runner.onPod({ ...phase(p, 'Succeeded'), metadata: { ...p.metadata, name: 'other' } });
    expect(reports.map((r) => r.state)).toEqual(['TASK_STARTING']);
  });
});

// --- task groups: one Pod, a container per task --------------------------------------------------

const EXECUTOR = {
  type: 'DEFAULT' as const,
  executor_id: { value: 'exec/1' },
  resources: [
    { name: 'cpus', type: 'SCALAR' as const, scalar: { value: 0.1 } },
    { name: 'mem', type: 'SCALAR' as const, scalar: { value: 32 } },
  ],
};

function group(tasks: Partial<TaskInfo>[], frameworkId = 'fw-1'): LaunchedGroup {
  return {
    frameworkId,
    agentId: 'node-a',
    hostname: 'node-a',
    executor: EXECUTOR,
    tasks: tasks.map((t, i) => taskInfo({ task_id: { value: `g${i}` }, ...t })),
  };
}

describe('buildGroupPod: ONE Pod bound to the node, a container per task', () => {
  it('runs each task command the safe way, each in its own container, whatever the form', () => {
    const hostile = [
      'echo hi; rm -rf /',
      'echo $(id) `whoami` && exit 3',
      'it\'s "quoted"\nsecond line',
      '-c',
    ];
    const p = buildGroupPod(
      group([
        ...hostile.map((value) => ({ command: { value } })),
        { command: { shell: false, value: '/usr/bin/env', arguments: ['env', 'A=1; echo pwned', '$(id)'] } },
      ]),
      'pg',
      { namespace: NS },
    );
    const cs = p.spec!.containers;
    expect(cs.map((c) => c.name)).toEqual(['task-0', 'task-1', 'task-2', 'task-3', 'task-4']);
    const runs = cs.map(asKubeletRuns);
    for (const [i, value] of hostile.entries()) {
      expect(runs[i]!.command).toEqual(['/bin/sh', '-c', value]);
      expect(runs[i]!.args).toBeUndefined();
    }
    expect(runs[4]!.command).toEqual(['/usr/bin/env']);
    expect(runs[4]!.args).toEqual(['A=1; echo pwned', '$(id)']);
    // the same restricted context as a lone task's, for every container
    const lone = pod().spec!;
    for (const c of cs) expect(c.securityContext).toEqual(lone.containers[0]!.securityContext);
    expect(p.spec).toMatchObject({
      nodeName: 'node-a',
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      securityContext: lone.securityContext,
    });
    expect(cs.map((c) => c.env!.find((e) => e.name === 'MESOS_TASK_ID')!.value)).toEqual([
      'g0',
      'g1',
      'g2',
      'g3',
      'g4',
    ]);
    expect(cs[0]!.env).toContainEqual({ name: 'MESOS_EXECUTOR_ID', value: 'exec/1' });
  });

  it('refuses a group any task of which it cannot run, naming that task', () => {
    for (const bad of [
      { command: { value: 'x', uris: [{ value: 'http://evil/payload' }] } },
      { command: { value: 'x', environment: { variables: [{ name: 'A=B; id', value: '1' }] } } },
      { command: { value: '' } },
      { command: { value: 'x', environment: { variables: [{ name: 'S', type: 'SECRET' as const }] } } },
    ]) {
      expect(codeOf(() => buildGroupPod(group([{}, bad]), 'pg', { namespace: NS }))).toMatch(
        /^MESOS_TASK_(INVALID|UNSUPPORTED): task_group\.tasks\[1\] \(g1\): /,
      );
    }
  });

  it("asks per container what its task asked, rounded up; the executor's on the first container", () => {
    const p = buildGroupPod(
      group([
        {
          resources: [
            { name: 'cpus', type: 'SCALAR', scalar: { value: 0.0001 } },
            { name: 'mem', type: 'SCALAR', scalar: { value: 1 } },
          ],
        },
        { resources: [{ name: 'cpus', type: 'SCALAR', scalar: { value: 0.25 } }] },
      ]),
      'pg',
      { namespace: NS },
    );
    const [a, b] = p.spec!.containers;
    // 0.0001 cpu is 1m (up), + the executor's 100m; 1 MB + 32 MB
    expect(a!.resources).toEqual({
      requests: { cpu: '101m', memory: '33Mi' },
      limits: { cpu: '101m', memory: '33Mi' },
    });
    expect(b!.resources!.requests).toEqual({ cpu: '250m' });
  });

  it('labels the framework and executor, and names every task (exactly) in annotations', () => {
    const fw = 'framework id with spaces/and/slashes'.repeat(3);
    const p = buildGroupPod(
      group([{ task_id: { value: 'A/B:c' } }, { task_id: { value: 'ü'.repeat(70) } }], fw),
      'pg',
      {
        namespace: NS,
      },
    );
    const labels = p.metadata!.labels!;
    expect(labels['app.kubernetes.io/managed-by']).toBe('meson');
    expect(labels['meson.dev/mesos-framework']).toBeDefined();
    expect(labels['meson.dev/mesos-executor']).toBeDefined();
    for (const v of Object.values(labels)) expect(v).toMatch(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/);
    for (const v of Object.values(labels)) expect(v.length).toBeLessThanOrEqual(63);
    const ann = p.metadata!.annotations!;
    expect(ann['meson.dev/mesos-framework-id']).toBe(fw);
    expect(ann['meson.dev/mesos-executor-id']).toBe('exec/1');
    expect(JSON.parse(ann['meson.dev/mesos-task-ids']!)).toEqual(['A/B:c', 'ü'.repeat(70)]);
    expect(ann['meson.dev/task']).toBe(groupHoldId(fw, 'exec/1'));
  });
});

describe('groupTaskStates: each task from its own container', () => {
  const C = ['task-0', 'task-1'];
  const run = (name: string) => ({ name, state: { running: {} } });
  const exit = (name: string, exitCode: number, reason = exitCode === 0 ? 'Completed' : 'Error') => ({
    name,
    state: { terminated: { exitCode, reason } },
  });
  const at = (status: object, killed = false) =>
    groupTaskStates({ ...pod(), status } as V1Pod, C, killed).map((r) => r && [r.state, r.reason, r.message]);

  it('running, finished and failed containers', () => {
    expect(at({ phase: 'Pending' })).toEqual([
      ['TASK_STARTING', undefined, undefined],
      ['TASK_STARTING', undefined, undefined],
    ]);
    expect(at({ phase: 'Running', containerStatuses: [run('task-0'), exit('task-1', 0)] })).toEqual([
      ['TASK_RUNNING', undefined, undefined],
      ['TASK_FINISHED', undefined, 'Command exited with status 0'],
    ]);
    expect(at({ phase: 'Running', containerStatuses: [run('task-0'), exit('task-1', 2)] })).toEqual([
      ['TASK_RUNNING', undefined, undefined],
      ['TASK_FAILED', 'REASON_COMMAND_EXECUTOR_FAILED', 'Command exited with status 2'],
    ]);
    expect(
      at({ phase: 'Failed', containerStatuses: [exit('task-0', 137, 'OOMKilled'), exit('task-1', 0)] }),
    ).toEqual([
      [
        'TASK_FAILED',
        'REASON_CONTAINER_LIMITATION_MEMORY',
        'the task used more memory than it asked for (OOMKilled)',
      ],
      ['TASK_FINISHED', undefined, 'Command exited with status 0'],
    ]);
    // KWOK and some kubelets end a Pod before reporting every container
    expect(at({ phase: 'Succeeded' }).map((r) => r?.[0])).toEqual(['TASK_FINISHED', 'TASK_FINISHED']);
    expect(at({ phase: 'Failed', reason: 'OutOfcpu' }).map((r) => r?.[1])).toEqual([
      'REASON_CONTAINER_LAUNCH_FAILED',
      'REASON_CONTAINER_LAUNCH_FAILED',
    ]);
  });

  it('while killed, a container still running says nothing; one that ends is TASK_KILLED', () => {
    expect(at({ phase: 'Running', containerStatuses: [run('task-0'), exit('task-1', 143)] }, true)).toEqual([
      undefined,
      ['TASK_KILLED', undefined, 'killed'],
    ]);
    expect(at({ phase: 'Failed' }, true).map((r) => r?.[0])).toEqual(['TASK_KILLED', 'TASK_KILLED']);
  });
});

describe('PodTaskRunner: task groups', () => {
  function launchGroup(runner: PodTaskRunner, g = group([{}, {}])) {
    const reports: [string, string][] = [];
    runner.launchGroup(
      g,
      g.tasks.map((t) => (r: TaskReport) => reports.push([t.task_id.value, r.state])),
    );
    return reports;
  }
  const withContainers = (p: V1Pod, ph: string, containerStatuses: object[]) =>
    phase(p, ph, { containerStatuses } as Partial<NonNullable<V1Pod['status']>>);

  it('creates ONE Pod, holds the group (tasks + executor) once, and reports each task from its container', async () => {
    const { capacity, client, runner, tick } = setup();
    const reports = launchGroup(runner);
    // 2 x (100m, 32 MB) + the executor's 100m, 32 MB; one Pod slot
    expect(capacity.usedOn('node-a')).toMatchObject({
      cpuMillis: 300,
      memoryBytes: 96 * 2 ** 20,
      scalars: { pods: 1 },
    });
    expect(runner.held()).toEqual({ cpuMillis: 300, memoryBytes: 96 * 2 ** 20 });
    await tick();
    expect(client.created).toHaveLength(1);
    const p = client.created[0]!;
    capacity.upsertPod(withContainers(p, 'Running', []));
    expect(capacity.usedOn('node-a')).toMatchObject({ cpuMillis: 300, scalars: { pods: 1 } });
    runner.onPod(
      withContainers(p, 'Running', [
        { name: 'task-0', state: { running: {} } },
        { name: 'task-1', state: { terminated: { exitCode: 0 } } },
      ]),
    );
    expect(client.deleted).toEqual([]);
    runner.onPod(
      withContainers(p, 'Succeeded', [
        { name: 'task-0', state: { terminated: { exitCode: 0 } } },
        { name: 'task-1', state: { terminated: { exitCode: 0 } } },
      ]),
    );
    expect(reports).toEqual([
      ['g0', 'TASK_STARTING'],
      ['g1', 'TASK_STARTING'],
      ['g0', 'TASK_RUNNING'],
      ['g1', 'TASK_FINISHED'],
      ['g0', 'TASK_FINISHED'],
    ]);
    capacity.upsertPod(withContainers(p, 'Succeeded', []));
    expect(capacity.usedOn('node-a')?.cpuMillis).toBe(0);
    await tick();
    expect(client.deleted).toEqual([p.metadata!.name]);
    expect(runner.size).toBe(0);
  });

  it('a task that fails kills the rest of its group: they end TASK_KILLED', async () => {
    const { client, runner, tick } = setup();
    const reports = launchGroup(runner);
    await tick();
    const p = client.created[0]!;
    runner.onPod(
      withContainers(p, 'Running', [
        { name: 'task-0', state: { running: {} } },
        { name: 'task-1', state: { terminated: { exitCode: 2 } } },
      ]),
    );
    await tick();
    expect(client.deleted).toEqual([p.metadata!.name]);
    // the kill's SIGTERM makes the other exit non-zero: still TASK_KILLED, not FAILED
    runner.onPod(
      withContainers(p, 'Failed', [
        { name: 'task-0', state: { terminated: { exitCode: 143 } } },
        { name: 'task-1', state: { terminated: { exitCode: 2 } } },
      ]),
    );
    expect(reports.slice(2)).toEqual([
      ['g0', 'TASK_RUNNING'],
      ['g1', 'TASK_FAILED'],
      ['g0', 'TASK_KILLED'],
    ]);
    expect(runner.size).toBe(0);
  });

  it('a KILL of one task deletes the group Pod; every task ends TASK_KILLED; a foreign delete is TASK_LOST', async () => {
    const { capacity, client, runner, tick } = setup();
    const reports = launchGroup(runner);
    await tick();
    const p = client.created[0]!;
    runner.kill('fw-1', 'g1');
    await tick();
    expect(client.deleted).toEqual([p.metadata!.name]);
    runner.onPodDeleted(withContainers(p, 'Running', []));
    expect(reports.slice(2).sort()).toEqual([
      ['g0', 'TASK_KILLED'],
      ['g1', 'TASK_KILLED'],
    ]);
    expect(capacity.usedOn('node-a')?.cpuMillis).toBe(0);
    const lost = launchGroup(runner, group([{ task_id: { value: 'l0' } }, { task_id: { value: 'l1' } }]));
    await tick();
    runner.onPodDeleted(withContainers(client.created[1]!, 'Running', []));
    expect(lost.slice(2).sort()).toEqual([
      ['l0', 'TASK_LOST'],
      ['l1', 'TASK_LOST'],
    ]);
  });

  it('a group it cannot build, or whose create is refused, fails every task; no hold is left', async () => {
    const { capacity, client, runner, tick } = setup();
    const bad = launchGroup(runner, group([{}, { command: { value: 'x', uris: [{ value: 'http://x' }] } }]));
    expect(bad).toEqual([
      ['g0', 'TASK_ERROR'],
      ['g1', 'TASK_ERROR'],
    ]);
    expect(client.created).toEqual([]);
    client.failCreate = { code: 422, times: 1 };
    const refused = launchGroup(runner);
    await tick();
    expect(refused).toEqual([
      ['g0', 'TASK_ERROR'],
      ['g1', 'TASK_ERROR'],
    ]);
    expect(capacity.usedOn('node-a')?.cpuMillis).toBe(0);
  });
});
