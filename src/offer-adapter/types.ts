/**
 * The offer model shared by every offer source (Kubernetes node capacity, a Mesos master, the
 * local machine). All amounts are integers in fixed units so that arithmetic is exact:
 * CPU in millicores, memory and disk in bytes, GPUs and extended scalars in whole units.
 */

export type OfferSource = 'kubernetes' | 'mesos' | 'local';

/** Inclusive port range, as Mesos writes it (`[31000-32000]`). */
export interface PortRange {
  begin: number;
  end: number;
}

/**
 * A Kubernetes node taint (Mesos agents have none). Only `NoSchedule` and `NoExecute` keep tasks
 * off a host; `PreferNoSchedule` is carried for information and never filters.
 */
export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** Resources a host has (or an offer carries). */
export interface Resources {
  cpuMillis: number;
  memoryBytes: number;
  diskBytes: number;
  gpus: number;
  /** Free port ranges (offers only). */
  ports?: PortRange[];
  /** Named extended scalars in whole units (`pods`, `example.com/fpga`, Mesos custom scalars). */
  scalars?: Record<string, number>;
}

/** Resources a task asks for. Same units as Resources; ports are a count, assigned at placement. */
export interface ResourceRequest {
  cpuMillis: number;
  memoryBytes: number;
  diskBytes: number;
  gpus: number;
  ports?: number;
  scalars?: Record<string, number>;
}

export interface Offer {
  /** Unique per source; Mesos offer id, or a synthetic id for Kubernetes/local capacity views. */
  id: string;
  source: OfferSource;
  /** Host name (Kubernetes node name, Mesos hostname). Offers of one host are merged for placement. */
  hostname: string;
  /** Mesos agent id; for Kubernetes the node name. */
  agentId?: string;
  /** What is free on the host, offered now. */
  resources: Resources;
  /**
   * The host's total capacity, when the source knows it (Kubernetes allocatable, Mesos agent
   * total). Fitness measures packing against it; without it the offered amount is the total.
   */
  capacity?: Resources;
  /** Node labels / Mesos attributes, flattened to text. */
  attributes: Record<string, string>;
  /** The node's taints (Kubernetes); a task must tolerate the NoSchedule/NoExecute ones. */
  taints?: Taint[];
  /** Epoch ms at which the offer must be declined if unused. */
  expiresAt?: number;
  receivedAt?: number;
}

export function emptyResources(): Resources {
  return { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
}

export function emptyRequest(): ResourceRequest {
  return { cpuMillis: 0, memoryBytes: 0, diskBytes: 0, gpus: 0 };
}

/**
 * Whether an offer's unused part stays usable after a placement on it. A Mesos offer is consumed
 * whole by an ACCEPT (the master re-offers the rest); Kubernetes and local offers are views of
 * free capacity, so their remainder stays available.
 */
export function offerKeepsRemainder(offer: Offer): boolean {
  return offer.source !== 'mesos';
}
