// Built-in fitness functions (Fenzo's cpuMemBinPacker and its spreading counterpart).
import type { FitnessFunction, HostView, ResourceRequest, Task } from './types.ts';

/**
 * Mean of CPU and memory utilisation the host would have with the task on it (0..1). Dimensions
 * the host has none of are left out.
 */
export function packedShare(r: ResourceRequest, host: HostView): number {
  const cap = host.capacity;
  const free = host.free;
  let sum = 0;
  let dims = 0;
  if (cap.cpuMillis > 0) {
    sum += (cap.cpuMillis - free.cpuMillis + r.cpuMillis) / cap.cpuMillis;
    dims++;
  }
  if (cap.memoryBytes > 0) {
    sum += (cap.memoryBytes - free.memoryBytes + r.memoryBytes) / cap.memoryBytes;
    dims++;
  }
  if (dims === 0) return 0;
  const f = sum / dims;
  return f > 1 ? 1 : Math.max(f, 0);
}

export const binPackingFitness: FitnessFunction = {
  name: 'binpack',
  fitness: (task: Task, host: HostView) => packedShare(task.resources, host),
};

export const spreadFitness: FitnessFunction = {
  name: 'spread',
  fitness: (task: Task, host: HostView) => 1 - packedShare(task.resources, host),
};
