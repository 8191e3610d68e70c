import { describe, expect, it } from 'vitest';
import {
  type AnnouncedArtifact,
  announcedFromDataArtifact,
  artifactMatches,
  artifactSetKey,
  artifactTriggerFires,
} from './artifacts.ts';

const views = (
  country: string,
  dateint: number | string,
  announcedAt = 0,
  id?: string,
): AnnouncedArtifact => ({
  name: 'views',
  partition: { country, dateint },
  announcedAt,
  id,
});
const clicks = (country: string, dateint: number | string, announcedAt = 0): AnnouncedArtifact => ({
  name: 'clicks',
  partition: { country, dateint },
  announcedAt,
});

describe('artifactMatches', () => {
  it('needs the same name and a partition containing the trigger keys (values as strings)', () => {
    expect(artifactMatches({ name: 'views', partition: { country: 'US' } }, views('US', 1))).toBe(true);
    expect(artifactMatches({ name: 'views', partition: { country: 'US' } }, views('CA', 1))).toBe(false);
    expect(
      artifactMatches({ name: 'views', partition: { dateint: '20171107' } }, views('US', 20171107)),
    ).toBe(true);
    expect(artifactMatches({ name: 'views', partition: { hour: 1 } }, views('US', 1))).toBe(false);
    expect(artifactMatches({ name: 'views' }, { name: 'views' })).toBe(true);
    expect(artifactMatches({ name: 'views' }, { name: 'clicks' })).toBe(false);
  });

  it('takes an expression placeholder in a trigger partition literally', () => {
    const placeholder = '$' + '{dateint}';
    expect(
      artifactMatches({ name: 'v', partition: { d: placeholder } }, { name: 'v', partition: { d: '1' } }),
    ).toBe(false);
    expect(
      artifactMatches(
        { name: 'v', partition: { d: placeholder } },
        { name: 'v', partition: { d: placeholder } },
      ),
    ).toBe(true);
  });
});

describe('artifactTriggerFires', () => {
  const trigger = [{ name: 'views', partition: { country: 'US' } }];

  it('one run per distinct matching partition', () => {
    const fires = artifactTriggerFires(
      trigger,
      [views('US', 1, 10), views('CA', 1, 11), views('US', 2, 12)],
      [],
    );
    expect(fires.map((f) => f.artifacts[0]!.partition)).toEqual([
      { country: 'US', dateint: 1 },
      { country: 'US', dateint: 2 },
    ]);
    expect(new Set(fires.map((f) => f.key)).size).toBe(2);
  });

  it('does not fire twice for a re-announcement or after a restart', () => {
    const first = artifactTriggerFires(trigger, [views('US', 1, 10, 'views-a')], []);
    expect(first).toHaveLength(1);
    const fired = new Set(first.map((f) => f.key));
    // re-announced (new object, same name+partition, values written as strings): nothing new
    const again = artifactTriggerFires(
      trigger,
      [views('US', 1, 10, 'views-a'), views('US', '1', 20, 'views-b')],
      fired,
    );
    expect(again).toEqual([]);
    // a new partition fires once
    const next = artifactTriggerFires(trigger, [views('US', 1, 10), views('US', 2, 30)], fired);
    expect(next.map((f) => f.artifacts[0]!.partition!.dateint)).toEqual([2]);
  });

  it('the key ignores partition key order, ids and value types', () => {
    const a = artifactSetKey([{ name: 'v', partition: { a: 1, b: 'x' }, id: 'one' }]);
    const b = artifactSetKey([{ name: 'v', partition: { b: 'x', a: '1' }, id: 'two' }]);
    expect(a).toBe(b);
    expect(artifactSetKey([{ name: 'v', partition: { a: 2, b: 'x' } }])).not.toBe(a);
  });

  it('fires only when ALL entries are announced, joining on shared free keys', () => {
    const both = [
      { name: 'views', partition: { country: 'US' } },
      { name: 'clicks', partition: { country: 'US' } },
    ];
    expect(artifactTriggerFires(both, [views('US', 1)], [])).toEqual([]);
    const fires = artifactTriggerFires(both, [views('US', 1, 1), views('US', 2, 2), clicks('US', 1, 3)], []);
    expect(fires).toHaveLength(1);
    expect(fires[0]!.artifacts.map((a) => [a.name, a.partition!.dateint])).toEqual([
      ['views', 1],
      ['clicks', 1],
    ]);
    const later = artifactTriggerFires(
      both,
      [views('US', 1, 1), views('US', 2, 2), clicks('US', 1, 3), clicks('US', 2, 4)],
      fires.map((f) => f.key),
    );
    expect(later.map((f) => f.artifacts[1]!.partition!.dateint)).toEqual([2]);
  });

  it('keys fixed differently per entry do not have to agree', () => {
    const mixed = [
      { name: 'views', partition: { country: 'US' } },
      { name: 'clicks', partition: { country: 'CA' } },
    ];
    const fires = artifactTriggerFires(mixed, [views('US', 7), clicks('CA', 7), clicks('CA', 8)], []);
    expect(
      fires.map((f) => f.artifacts.map((a) => `${a.partition!.country}${a.partition!.dateint}`)),
    ).toEqual([['US7', 'CA7']]);
  });

  it('orders fires by completion time and bounds the number returned', () => {
    const many = Array.from({ length: 50 }, (_, i) => views('US', i, 1000 - i));
    const fires = artifactTriggerFires(trigger, many, [], { maxFires: 5 });
    expect(fires.map((f) => f.artifacts[0]!.partition!.dateint)).toEqual([49, 48, 47, 46, 45]);
  });

  it('an empty trigger list never fires', () => {
    expect(artifactTriggerFires([], [views('US', 1)], [])).toEqual([]);
  });
});

describe('announcedFromDataArtifact', () => {
  it('takes name, partition, object name and announcement time', () => {
    expect(
      announcedFromDataArtifact({
        apiVersion: 'meson.dev/v1alpha1',
        kind: 'DataArtifact',
        metadata: { name: 'views-abc' },
        spec: { name: 'views', partition: { country: 'US' } },
        status: { announcedAt: '2026-01-01T00:00:00Z' },
      }),
    ).toEqual({
      name: 'views',
      partition: { country: 'US' },
      id: 'views-abc',
      announcedAt: Date.parse('2026-01-01T00:00:00Z'),
    });
  });
});
