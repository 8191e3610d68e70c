/**
 * Kubernetes resource lists (`{cpu: '500m', memory: '8Gi', 'nvidia.com/gpu': 1}`) to and from the
 * offer model, and Mesos <-> Kubernetes through it.
 */
import { type MesosResource, resourcesFromMesos, resourcesToMesos } from './mesos.ts';
import { bytes, cpuMillis, formatQuantity, parseQuantity, QuantityError } from './quantity.ts';
import type { ResourceRequest, Resources } from './types.ts';

export type KubernetesResourceList = Record<string, string | number>;

/** Extended resources counted as GPUs. */
export const GPU_RESOURCE_NAMES = ['nvidia.com/gpu', 'amd.com/gpu', 'gpu.intel.com/i915'] as const;

function parseNamed(name: string, value: string | number, convert: (q: string | number) => number): number {
  try {
    return convert(value);
  } catch (err) {
    if (err instanceof QuantityError) {
      throw new QuantityError(err.input, `resources.${name}: ${err.message}`, { cause: err });
    }
    throw err;
  }
}

/**
 * A node's allocatable/capacity or a container's requests as Resources. `cpu`, `memory`,
 * `ephemeral-storage` and GPU names map to the fixed fields; everything else (`pods`,
 * `hugepages-2Mi`, `example.com/fpga`) becomes a whole-unit extended scalar.
 * @throws QuantityError naming `resources.<name>` for an invalid quantity.
 */
export function resourcesFromKubernetes(list: KubernetesResourceList | undefined): Resources {
  const out: Resources = { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
  for (const [name, value] of Object.entries(list ?? {})) {
    if (name === 'cpu') out.cpuMillis = parseNamed(name, value, cpuMillis);
    else if (name === 'memory') out.memoryBytes = parseNamed(name, value, bytes);
    else if (name === 'ephemeral-storage') out.diskBytes = parseNamed(name, value, bytes);
    else if ((GPU_RESOURCE_NAMES as readonly string[]).includes(name))
      out.gpus += parseNamed(name, value, bytes);
    else {
      out.scalars ??= {};
      out.scalars[name] = parseNamed(name, value, bytes);
    }
  }
  return out;
}

/** Resources as a Kubernetes resource list in canonical quantities (`1500m`, `8Gi`); zeros left out. */
export function resourcesToKubernetes(
  r: Resources | ResourceRequest,
  opts: { gpuResourceName?: string } = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  if (r.cpuMillis > 0)
    out.cpu = formatQuantity({ nanos: BigInt(r.cpuMillis) * 1_000_000n, format: 'DecimalSI' });
  if (r.memoryBytes > 0) out.memory = formatBinary(r.memoryBytes);
  if (r.diskBytes > 0) out['ephemeral-storage'] = formatBinary(r.diskBytes);
  if (r.gpus > 0) out[opts.gpuResourceName ?? 'nvidia.com/gpu'] = String(r.gpus);
  for (const [name, v] of Object.entries(r.scalars ?? {})) if (v > 0) out[name] = String(v);
  return out;
}

function formatBinary(n: number): string {
  return formatQuantity({ nanos: BigInt(n) * 1_000_000_000n, format: 'BinarySI' });
}

export function mesosToKubernetes(list: readonly MesosResource[]): Record<string, string> {
  return resourcesToKubernetes(resourcesFromMesos(list));
}

export function kubernetesToMesos(
  list: KubernetesResourceList,
  opts: { role?: string } = {},
): MesosResource[] {
  return resourcesToMesos(resourcesFromKubernetes(list), opts);
}

/** A quantity given as text or number, as whole bytes (for `memory: 1Gi` style step fields). */
export function quantityBytes(q: string | number): number {
  return bytes(parseQuantity(q));
}
