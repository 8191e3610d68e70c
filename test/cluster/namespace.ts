import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, inject } from 'vitest';

/** Admin client configuration of the shared test cluster (see global-setup.ts). */
export function testKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('kubeconfigPath'));
  return kc;
}

export interface TestNamespace {
  /** The current test's namespace (valid inside a test or its hooks). */
  readonly name: string;
  readonly kc: KubeConfig;
}

/**
 * Gives every test in the calling file a fresh namespace, created before and deleted after
 * each test (deletion is not awaited: kube-controller-manager finishes it in the background).
 * Call at the top level of a test file or inside `describe`.
 */
export function useNamespace(prefix = 't'): TestNamespace {
  const kc = testKubeConfig();
  const core = kc.makeApiClient(CoreV1Api);
  let current: string | undefined;
  beforeEach(async () => {
    current = `${prefix}-${randomBytes(4).toString('hex')}`;
    await core.createNamespace({
      body: { metadata: { name: current, labels: { 'meson.dev/test': 'true' } } },
    });
  });
  afterEach(async () => {
    if (!current) return;
    const name = current;
    current = undefined;
    await core.deleteNamespace({ name }).catch(() => {});
  });
  return {
    get name(): string {
      if (!current) throw new Error('useNamespace(): the namespace exists only inside a test');
      return current;
    },
    kc,
  };
}
