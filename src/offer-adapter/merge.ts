// Offers of one host merged into one placement target (Mesos accepts several offers of one agent
// in one ACCEPT; Kubernetes and local sources may split a node's capacity too).
import { addResources } from './resources.ts';
import type { Offer, Resources } from './types.ts';

export interface HostOffers {
  hostname: string;
  agentId?: string;
  /** Offers in arrival order; a placement on the host uses all of them. */
  offers: Offer[];
  /** Sum of the offers' resources (port ranges joined). */
  resources: Resources;
  /** The host's total capacity: the largest capacity any offer reports, or at least the free sum. */
  capacity: Resources;
  attributes: Record<string, string>;
  /** The earliest expiry of the host's offers. */
  expiresAt?: number;
}

/** Groups offers by hostname, keeping first-seen host order (deterministic for a given input). */
export function mergeHostOffers(offers: readonly Offer[]): HostOffers[] {
  const byHost = new Map<string, HostOffers>();
  for (const o of offers) {
    const h = byHost.get(o.hostname);
    if (!h) {
      const merged: HostOffers = {
        hostname: o.hostname,
        offers: [o],
        resources: o.resources,
        capacity: o.capacity ?? o.resources,
        attributes: o.attributes,
      };
      if (o.agentId !== undefined) merged.agentId = o.agentId;
      if (o.expiresAt !== undefined) merged.expiresAt = o.expiresAt;
      byHost.set(o.hostname, merged);
      continue;
    }
    h.offers.push(o);
    h.resources = addResources(h.resources, o.resources);
    if (o.capacity) h.capacity = o.capacity;
    h.attributes = { ...h.attributes, ...o.attributes };
    if (o.expiresAt !== undefined) h.expiresAt = Math.min(h.expiresAt ?? o.expiresAt, o.expiresAt);
  }
  for (const h of byHost.values()) h.capacity = atLeast(h.capacity, h.resources);
  return [...byHost.values()];
}

function atLeast(cap: Resources, free: Resources): Resources {
  return {
    ...cap,
    cpuMillis: Math.max(cap.cpuMillis, free.cpuMillis),
    memoryBytes: Math.max(cap.memoryBytes, free.memoryBytes),
    diskBytes: Math.max(cap.diskBytes, free.diskBytes),
    gpus: Math.max(cap.gpus, free.gpus),
  };
}
