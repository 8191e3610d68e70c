import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { VersionApi } from '@kubernetes/client-node';
import { describe, expect, inject, it } from 'vitest';
import { testKubeConfig } from '../cluster/namespace.ts';

describe('test control plane', () => {
  it('serves the version the binaries were stamped with', async () => {
    const info = await testKubeConfig().makeApiClient(VersionApi).getCode();
    expect(info.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    expect(info.major).toBe('1');
    expect(Number(info.minor)).toBeGreaterThanOrEqual(36);
  });

  it('lists the KWOK nodes with the kubectl built next to the binaries', () => {
    const kubectl = join(inject('clusterBinDir'), 'kubectl');
    const result = spawnSync(
      kubectl,
      [
        'get',
        'nodes',
        '-l',
        'type=kwok',
        '-o',
        'custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=="Ready")].status',
        '--no-headers',
      ],
      { env: { ...process.env, KUBECONFIG: inject('kubeconfigPath') }, encoding: 'utf8' },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const rows = result.stdout
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/));
    for (const name of inject('clusterNodes')) expect(rows).toContainEqual([name, 'True']);
  });
});
