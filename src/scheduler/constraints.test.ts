import { describe, expect, it } from 'vitest';
import { Scheduler, schedulePass } from './scheduler.ts';
import { offer, task } from './test-helpers.ts';
import type { AttributeRequirement, Task } from './types.ts';

const now = 1000;

function placeOne(t: Task, offers = hosts()) {
  return schedulePass({ tasks: [t], offers, now });
}

function hosts() {
  return [
    offer('ssd-a', 8, 32, { attributes: { disktype: 'ssd', zone: 'a', cores: '8' } }),
    offer('hdd-b', 8, 32, { attributes: { disktype: 'hdd', zone: 'b', cores: '8' } }),
    offer('gpu-c', 8, 32, { attributes: { zone: 'c', cores: '16' }, resources: { gpus: 2 } }),
  ];
}

describe('hard constraints', () => {
  it('nodeSelector: only hosts with every label', () => {
    const res = placeOne(task('t', 1, 1, { constraints: { nodeSelector: { disktype: 'ssd', zone: 'a' } } }));
    expect(res.placements.map((p) => p.hostname)).toEqual(['ssd-a']);
    const none = placeOne(task('t', 1, 1, { constraints: { nodeSelector: { disktype: 'ssd', zone: 'b' } } }));
    expect(none.placements).toEqual([]);
    expect(none.unplaced[0]!.reasons.map((r) => r.message)).toEqual([
      'nodeSelector disktype=ssd: 2 of 3 hosts did not match',
      'nodeSelector zone=b: 2 of 3 hosts did not match',
    ]);
  });

  const cases: [AttributeRequirement, string[]][] = [
    [{ key: 'zone', operator: 'In', values: ['a', 'b'] }, ['ssd-a', 'hdd-b']],
    [{ key: 'zone', operator: 'NotIn', values: ['a', 'b'] }, ['gpu-c']],
    [{ key: 'disktype', operator: 'Exists' }, ['ssd-a', 'hdd-b']],
    [{ key: 'disktype', operator: 'DoesNotExist' }, ['gpu-c']],
    [{ key: 'cores', operator: 'Gt', values: ['8'] }, ['gpu-c']],
    [{ key: 'cores', operator: 'Lt', values: ['16'] }, ['ssd-a', 'hdd-b']],
  ];
  it.each(cases)('attribute %j', (req, allowed) => {
    // Three tasks that each need a whole host: they land exactly on the allowed hosts.
    const tasks = [0, 1, 2].map((i) => task(`t${i}`, 8, 1, { constraints: { attributes: [req] } }));
    const res = schedulePass({ tasks, offers: hosts(), now, options: { gpuHosts: 'shared' } });
    expect(res.placements.map((p) => p.hostname).sort()).toEqual([...allowed].sort());
    for (const u of res.unplaced) expect(u.outcome).toBe('does-not-fit');
  });

  it('GPU: a GPU task goes to a GPU host; the reason names hosts without GPUs', () => {
    const res = placeOne(task('t', 1, 1, { resources: { gpus: 1 } }));
    expect(res.placements[0]!.hostname).toBe('gpu-c');
    const tooMany = placeOne(task('t', 1, 1, { resources: { gpus: 3 } }));
    expect(tooMany.unplaced[0]!.reasons.map((r) => r.message)).toEqual([
      'gpus: 3 of 3 hosts lacked it (requested 3, most free on those hosts 2)',
      'gpu: 2 of 3 hosts: host has no GPUs',
    ]);
  });

  it('GPU hosts can be reserved for GPU tasks', () => {
    const tasks = [0, 1, 2].map((i) => task(`t${i}`, 8, 1));
    const shared = schedulePass({ tasks, offers: hosts(), now });
    expect(shared.placements).toHaveLength(3);
    const reserved = schedulePass({ tasks, offers: hosts(), now, options: { gpuHosts: 'reserved' } });
    expect(reserved.placements.map((p) => p.hostname).sort()).toEqual(['hdd-b', 'ssd-a']);
    expect(reserved.unplaced[0]!.reasons.map((r) => r.message)).toContain(
      'gpu: 1 of 3 hosts: GPU host reserved for GPU tasks',
    );
  });

  it('unique host: no two tasks of a group on one host, counting running members', () => {
    const tasks = [0, 1, 2, 3].map((i) =>
      task(`g${i}`, 1, 1, { groupId: 'foreach-1', constraints: { uniqueHost: true } }),
    );
    const res = schedulePass({
      tasks,
      offers: hosts(),
      now,
      state: { groupHosts: { 'foreach-1': ['hdd-b'] } },
    });
    expect(res.placements.map((p) => p.hostname).sort()).toEqual(['gpu-c', 'ssd-a']);
    expect(res.unplaced.map((u) => u.taskId)).toEqual(['g2', 'g3']);
    expect(res.unplaced[0]!.reasons[0]!.message).toBe(
      'uniqueHost: 3 of 3 hosts: host already runs a task of group foreach-1',
    );
    // Tasks of a group without uniqueHost share hosts freely (bin packing puts them together).
    const packed = schedulePass({
      tasks: [0, 1, 2].map((i) => task(`p${i}`, 1, 1, { groupId: 'g' })),
      offers: hosts(),
      now,
    });
    expect(new Set(packed.placements.map((p) => p.hostname)).size).toBe(1);
  });
});

describe('resource fit and why a task stays queued', () => {
  it('records every shortfall per host and aggregates them', () => {
    const offers = [
      offer('a', 2, 4, { resources: { ports: [{ begin: 31000, end: 31000 }] } }),
      offer('b', 4, 1),
      offer('c', 1, 64, { resources: { scalars: { 'example.com/fpga': 1 } } }),
    ];
    const res = schedulePass({
      tasks: [
        task('big', 3, 8, { resources: { ports: 2, scalars: { 'example.com/fpga': 1 }, diskBytes: 10 } }),
      ],
      offers,
      now,
    });
    const u = res.unplaced[0]!;
    expect(u.outcome).toBe('does-not-fit');
    expect(u.hosts!.find((h) => h.hostname === 'a')!.reasons).toEqual([
      { kind: 'insufficient', resource: 'cpus', requested: 3000, available: 2000 },
      { kind: 'insufficient', resource: 'memory', requested: 8 * 1024 ** 3, available: 4 * 1024 ** 3 },
      { kind: 'insufficient', resource: 'disk', requested: 10, available: 0 },
      { kind: 'insufficient', resource: 'ports', requested: 2, available: 1 },
      { kind: 'insufficient', resource: 'scalar:example.com/fpga', requested: 1, available: 0 },
    ]);
    expect(u.reasons.map((r) => r.message)).toEqual([
      'disk: 3 of 3 hosts lacked it (requested 10, most free on those hosts 0)',
      'ports: 3 of 3 hosts lacked it (requested 2, most free on those hosts 1)',
      'cpus: 2 of 3 hosts lacked it (requested 3, most free on those hosts 2)',
      'memory: 2 of 3 hosts lacked it (requested 8Gi, most free on those hosts 4Gi)',
      'example.com/fpga: 2 of 3 hosts lacked it (requested 1, most free on those hosts 0)',
    ]);
  });

  it('uses thousands separators and counts hosts at scale', () => {
    const offers = Array.from({ length: 5000 }, (_, i) => offer(`h${i}`, i < 3 ? 8 : 2, 8));
    const res = schedulePass({ tasks: [task('t', 4, 16)], offers, now, options: { explainHosts: false } });
    expect(res.unplaced[0]!.hosts).toBeUndefined();
    expect(res.unplaced[0]!.reasons.map((r) => r.message)).toEqual([
      'memory: 5,000 of 5,000 hosts lacked it (requested 16Gi, most free on those hosts 8Gi)',
      'cpus: 4,997 of 5,000 hosts lacked it (requested 4, most free on those hosts 2)',
    ]);
  });

  it('says so when there are no offers at all', () => {
    const res = schedulePass({ tasks: [task('t', 1, 1)], offers: [], now });
    expect(res.unplaced[0]!.reasons).toEqual([
      { key: 'no-offers', hosts: 0, totalHosts: 0, message: 'no offers: no host currently offers resources' },
    ]);
  });

  it('explains against the hosts as the pass left them; same-shape tasks share one explanation', () => {
    const res = schedulePass({
      tasks: [task('a', 2, 1), task('b', 2, 1), task('c', 2, 1)],
      offers: [offer('h', 2, 8)],
      now,
    });
    expect(res.placements.map((p) => p.taskId)).toEqual(['a']);
    expect(res.unplaced.map((u) => u.taskId)).toEqual(['b', 'c']);
    expect(res.unplaced[0]!.reasons).toBe(res.unplaced[1]!.reasons);
    expect(res.unplaced[0]!.reasons[0]!.message).toBe(
      'cpus: 1 of 1 hosts lacked it (requested 2, most free on those hosts 0)',
    );
  });

  it('computes reasons only when read, against the hosts as that pass left them', () => {
    let calls = 0;
    const counting = {
      name: 'counting',
      filter: () => {
        calls++;
        return undefined;
      },
    };
    const s = new Scheduler({ filters: [counting] });
    s.addOffer(offer('h', 2, 8, { resources: { scalars: { 'example.com/fpga': 1 } } }));
    s.enqueue(task('big', 4, 1, { submittedAt: 1 }));
    s.enqueue(task('fpga', 1, 1, { submittedAt: 2, resources: { scalars: { 'example.com/fpga': 1 } } }));
    s.enqueue(task('fpga2', 1, 1, { submittedAt: 3, resources: { scalars: { 'example.com/fpga': 1 } } }));
    s.schedule(now);
    const afterPass = calls; // the search's calls for the task it placed
    // The host changes before anyone asks: the answer is still the pass's.
    s.rescindOffer('h-offer');
    s.addOffer(offer('h', 8, 8, { resources: { scalars: { 'example.com/fpga': 5 } } }));
    expect(calls).toBe(afterPass);
    const why = s.whyQueued('fpga2')!;
    expect(calls).toBe(afterPass);
    expect(why.reasons.map((r) => r.message)).toEqual([
      'example.com/fpga: 1 of 1 hosts lacked it (requested 1, most free on those hosts 0)',
    ]);
    expect(calls).toBe(afterPass + 1); // one explanation (one host) for the shape
    expect(why.hosts).toEqual([
      {
        hostname: 'h',
        reasons: [{ kind: 'insufficient', resource: 'scalar:example.com/fpga', requested: 1, available: 0 }],
      },
    ]);
    expect(s.whyQueued('big')!.reasons[0]!.message).toBe(
      'cpus: 1 of 1 hosts lacked it (requested 4, most free on those hosts 1)',
    );
    expect(calls).toBe(afterPass + 2);
    expect(JSON.parse(JSON.stringify(why)).reasons).toEqual(why.reasons);
  });

  it('assigns the lowest free ports and never the same port twice', () => {
    const offers = [
      offer('h', 8, 8, {
        resources: {
          ports: [
            { begin: 100, end: 102 },
            { begin: 200, end: 205 },
          ],
        },
      }),
    ];
    const res = schedulePass({
      tasks: [task('a', 1, 1, { resources: { ports: 2 } }), task('b', 1, 1, { resources: { ports: 2 } })],
      offers,
      now,
    });
    expect(res.placements.map((p) => p.ports)).toEqual([
      [100, 101],
      [102, 200],
    ]);
  });
});
