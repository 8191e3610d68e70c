// Builders for scheduler tests (not part of the public API).
import type { Offer, Resources } from '../offer-adapter/types.ts';
import type { Task, TaskConstraints } from './types.ts';

export const GiB = 1024 ** 3;

export function offer(
  hostname: string,
  cores: number,
  memGi: number,
  extra: Partial<Omit<Offer, 'resources'>> & { resources?: Partial<Resources> } = {},
): Offer {
  const { resources, ...rest } = extra;
  return {
    id: `${hostname}-offer`,
    source: 'kubernetes',
    hostname,
    attributes: {},
    ...rest,
    resources: { cpuMillis: cores * 1000, memoryBytes: memGi * GiB, diskBytes: 0, gpus: 0, ...resources },
  };
}

export function task(
  id: string,
  cores: number,
  memGi: number,
  extra: Partial<Omit<Task, 'resources'>> & {
    resources?: Partial<Task['resources']>;
    constraints?: TaskConstraints;
  } = {},
): Task {
  const { resources, ...rest } = extra;
  return {
    id,
    tenant: 'ns',
    priority: 0,
    submittedAt: 0,
    ...rest,
    resources: {
      cpuMillis: Math.round(cores * 1000),
      memoryBytes: Math.round(memGi * GiB),
      diskBytes: 0,
      gpus: 0,
      ...resources,
    },
  };
}
