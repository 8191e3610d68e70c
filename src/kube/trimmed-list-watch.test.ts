import type { KubernetesListObject, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { listAllTrimmed } from './trimmed-list-watch.ts';

describe('listAllTrimmed', () => {
  it('reads every page, trims each item, and keeps the first page’s resourceVersion', async () => {
    const all: V1Pod[] = Array.from({ length: 1_234 }, (_, i) => ({
      metadata: { name: `p${i}`, namespace: 'ns', resourceVersion: String(i), labels: { big: 'x' } },
    }));
    const asked: { limit: number; _continue?: string }[] = [];
    const list = await listAllTrimmed<V1Pod>({
      pageSize: 500,
      listPage: async (page) => {
        asked.push(page);
        const from = Number(page._continue ?? 0);
        const items = all.slice(from, from + page.limit);
        const next = from + page.limit < all.length ? String(from + page.limit) : undefined;
        return {
          items,
          // later pages say another version: the snapshot is the first page's
          metadata: { resourceVersion: from === 0 ? '777' : '999', ...(next ? { _continue: next } : {}) },
        } as KubernetesListObject<V1Pod>;
      },
      trim: (p) => ({ metadata: { name: p.metadata?.name, namespace: p.metadata?.namespace } }),
    });
    expect(asked).toEqual([
      { limit: 500 },
      { limit: 500, _continue: '500' },
      { limit: 500, _continue: '1000' },
    ]);
    expect(list.items.map((p) => p.metadata?.name)).toEqual(all.map((p) => p.metadata?.name));
    expect(list.items[0]).toEqual({ metadata: { name: 'p0', namespace: 'ns' } });
    expect(list.metadata?.resourceVersion).toBe('777');
  });

  it('fails as the page fails (an expired continue token: the informer relists)', async () => {
    let n = 0;
    await expect(
      listAllTrimmed<V1Pod>({
        listPage: async () => {
          if (n++ === 0) return { items: [], metadata: { _continue: 'c' } } as KubernetesListObject<V1Pod>;
          throw Object.assign(new Error('410 Gone'), { code: 410 });
        },
        trim: (p) => p,
      }),
    ).rejects.toThrow('410 Gone');
  });
});
