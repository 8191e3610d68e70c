import { VersionApi } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import { kubectl } from '../cluster/kubectl.ts';
import { testKubeConfig } from '../cluster/namespace.ts';

describe('test control plane', () => {
  it('serves the version the binaries were stamped with', async () => {
    const info = await testKubeConfig().makeApiClient(VersionApi).getCode();
    expect(info.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    expect(info.major).toBe('1');
    expect(Number(info.minor)).toBeGreaterThanOrEqual(36);
  });

  it('lists the KWOK nodes Ready with the kubectl built next to the binaries', () => {
    const ready = '.status.conditions[?(@.type=="Ready")].status';
    const result = kubectl([
      'get',
      'nodes',
      '-l',
      'type=kwok',
      '-o',
      `custom-columns=NAME:.metadata.name,READY:${ready}`,
      '--no-headers',
    ]);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const rows = result.stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/));
    for (const name of inject('clusterNodes')) expect(rows).toContainEqual([name, 'True']);
  });
});
