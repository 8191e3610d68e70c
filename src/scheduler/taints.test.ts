import { describe, expect, it } from 'vitest';
import { toleratesTaint, untoleratedTaint } from './constraints.ts';
import { Scheduler, schedulePass } from './scheduler.ts';
import { offer, task } from './test-helpers.ts';
import type { Taint, TaskConstraints, Toleration } from './types.ts';

const now = 1000;

function tainted() {
  return [
    offer('plain', 8, 32, { attributes: { zone: 'a', pool: 'web' } }),
    offer('gpu', 8, 32, {
      attributes: { zone: 'b', pool: 'ml' },
      taints: [{ key: 'dedicated', value: 'ml', effect: 'NoSchedule' }],
    }),
    offer('drain', 8, 32, {
      attributes: { zone: 'c', pool: 'web' },
      taints: [
        { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' },
        { key: 'soft', value: 'x', effect: 'PreferNoSchedule' },
      ],
    }),
  ];
}

/** Tasks that each need a whole host land exactly on the hosts allowed to them. */
function hostsFor(constraints: TaskConstraints | undefined): string[] {
  const tasks = [0, 1, 2].map((i) => task(`t${i}`, 8, 1, { constraints }));
  return schedulePass({ tasks, offers: tainted(), now })
    .placements.map((p) => p.hostname)
    .sort();
}

describe('taints and tolerations', () => {
  it('keeps a task without tolerations off NoSchedule and NoExecute hosts, not PreferNoSchedule ones', () => {
    expect(hostsFor(undefined)).toEqual(['plain']);
    const res = schedulePass({ tasks: [task('big', 9, 1)], offers: tainted(), now });
    const messages = res.unplaced[0]!.reasons.map((r) => r.message);
    expect(messages).toContain('taint: 1 of 3 hosts: untolerated taint dedicated=ml:NoSchedule');
    expect(messages).toContain(
      'taint: 1 of 3 hosts: untolerated taint node.kubernetes.io/unreachable:NoExecute',
    );
    expect(messages.join('\n')).not.toContain('soft');
  });

  it('lets a tolerating task use the tainted host (Equal, Exists, any key, by effect)', () => {
    expect(hostsFor({ tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'ml' }] })).toEqual([
      'gpu',
      'plain',
    ]);
    expect(hostsFor({ tolerations: [{ key: 'dedicated', value: 'other' }] })).toEqual(['plain']);
    expect(
      hostsFor({ tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }] }),
    ).toEqual(['plain']);
    expect(hostsFor({ tolerations: [{ operator: 'Exists' }] })).toEqual(['drain', 'gpu', 'plain']);
    expect(hostsFor({ tolerations: [{ operator: 'Exists', effect: 'NoExecute' }] })).toEqual([
      'drain',
      'plain',
    ]);
  });

  it('checks unconstrained tasks against taints in the incremental scheduler too (bucket scans)', () => {
    const s = new Scheduler();
    for (let i = 0; i < 40; i++) {
      s.addOffer(offer(`h${i}`, 8, 32, i % 2 === 0 ? { taints: [{ key: 'k', effect: 'NoSchedule' }] } : {}));
    }
    for (let i = 0; i < 200; i++) s.enqueue(task(`t${i}`, 1, 1));
    const res = s.schedule(now);
    expect(res.placements.length).toBe(160);
    for (const p of res.placements) expect(Number(p.hostname.slice(1)) % 2).toBe(1);
  });

  it('a host whose last tainted offer goes is untainted again', () => {
    const s = new Scheduler();
    s.addOffer(offer('h', 8, 32, { id: 'a', taints: [{ key: 'k', effect: 'NoSchedule' }] }));
    s.addOffer(offer('h', 8, 32, { id: 'b' }));
    s.rescindOffer('a');
    s.enqueue(task('t', 1, 1));
    expect(s.schedule(now).placements.map((p) => p.hostname)).toEqual(['h']);
  });

  it('follows Kubernetes ToleratesTaint', () => {
    const taint: Taint = { key: 'k', value: 'v', effect: 'NoSchedule' };
    const cases: [Toleration, boolean][] = [
      [{ key: 'k', value: 'v' }, true],
      [{ key: 'k', operator: 'Equal', value: 'v', effect: 'NoSchedule' }, true],
      [{ key: 'k', value: 'w' }, false],
      [{ key: 'k', operator: 'Exists' }, true],
      [{ key: 'other', operator: 'Exists' }, false],
      [{ operator: 'Exists' }, true],
      [{ key: 'k', operator: 'Exists', effect: 'NoExecute' }, false],
    ];
    for (const [t, want] of cases) expect(toleratesTaint(t, taint), JSON.stringify(t)).toBe(want);
    expect(toleratesTaint({ key: 'k' }, { key: 'k', effect: 'NoSchedule' })).toBe(true);
    expect(
      untoleratedTaint([{ key: 'k', operator: 'Exists' }], [taint, { key: 'z', effect: 'NoExecute' }]),
    ).toEqual({
      key: 'z',
      effect: 'NoExecute',
    });
  });

  it('refuses malformed tolerations with the field path', () => {
    const bad: [Toleration, string][] = [
      [
        { key: 'k', operator: 'Gt' as never },
        'constraints.tolerations[0].operator: expected Equal or Exists',
      ],
      [{ key: 'k', effect: 'Sometimes' as never }, 'constraints.tolerations[0].effect'],
      [{ key: 'k', operator: 'Exists', value: 'v' }, 'constraints.tolerations[0].value'],
      [{ value: 'v' }, 'a toleration without a key must use Exists'],
    ];
    for (const [t, msg] of bad) {
      const res = schedulePass({
        tasks: [task('t', 1, 1, { constraints: { tolerations: [t] } })],
        offers: tainted(),
        now,
      });
      expect(res.unplaced[0]!.outcome).toBe('broke');
      expect(res.unplaced[0]!.error!.message).toContain(msg);
    }
  });
});

describe('required node affinity', () => {
  it('needs every requirement of at least one term', () => {
    const tol: Toleration[] = [{ operator: 'Exists' }];
    expect(
      hostsFor({
        tolerations: tol,
        nodeAffinity: [
          [
            { key: 'zone', operator: 'In', values: ['a', 'b'] },
            { key: 'pool', operator: 'In', values: ['web'] },
          ],
        ],
      }),
    ).toEqual(['plain']);
    expect(
      hostsFor({
        tolerations: tol,
        nodeAffinity: [
          [{ key: 'zone', operator: 'In', values: ['a'] }],
          [{ key: 'pool', operator: 'In', values: ['ml'] }],
        ],
      }),
    ).toEqual(['gpu', 'plain']);
    expect(hostsFor({ tolerations: tol, nodeAffinity: [] })).toEqual([]);
  });

  it('explains a miss', () => {
    const res = schedulePass({
      tasks: [
        task('t', 1, 1, {
          constraints: { nodeAffinity: [[{ key: 'zone', operator: 'In', values: ['z'] }]] },
        }),
      ],
      offers: tainted(),
      now,
    });
    expect(res.unplaced[0]!.reasons.map((r) => r.message)).toContain(
      'nodeAffinity (zone in (z)): 3 of 3 hosts did not match',
    );
  });

  it('refuses a malformed term with its path', () => {
    const res = schedulePass({
      tasks: [
        task('t', 1, 1, { constraints: { nodeAffinity: [[{ key: 'zone', operator: 'Near' as never }]] } }),
      ],
      offers: tainted(),
      now,
    });
    expect(res.unplaced[0]!.error!.message).toContain('constraints.nodeAffinity[0][0].operator');
  });
});

describe('taints with remembered bucket scans', () => {
  it("never hands a tolerating task's scan to a task without tolerations, nor the reverse", () => {
    const s = new Scheduler();
    // many equal hosts in one bucket (scans are remembered for big buckets), half tainted
    for (let i = 0; i < 64; i++) {
      s.addOffer(offer(`h${i}`, 8, 32, i < 32 ? { taints: [{ key: 'k', effect: 'NoSchedule' }] } : {}));
    }
    const tol = { tolerations: [{ key: 'k', operator: 'Exists' as const }] };
    for (let i = 0; i < 40; i++) {
      s.enqueue(task(`a${i}`, 0.1, 0.1, { constraints: tol, submittedAt: 2 * i }));
      s.enqueue(task(`b${i}`, 0.1, 0.1, { submittedAt: 2 * i + 1 }));
    }
    const res = s.schedule(now);
    expect(res.placements.length).toBe(80);
    for (const p of res.placements) {
      if (p.taskId.startsWith('b')) expect(Number(p.hostname.slice(1))).toBeGreaterThanOrEqual(32);
    }
  });
});
