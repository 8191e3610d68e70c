export {
  GPU_RESOURCE_NAMES,
  type KubernetesResourceList,
  kubernetesToMesos,
  mesosToKubernetes,
  quantityBytes,
  resourcesFromKubernetes,
  resourcesToKubernetes,
} from './kubernetes-resources.ts';
export { type HostOffers, mergeHostOffers } from './merge.ts';
export {
  attributesFromMesos,
  bytesToMegabytes,
  MESOS_MB,
  type MesosAttribute,
  type MesosOffer,
  type MesosRange,
  type MesosResource,
  offerFromMesos,
  resourcesFromMesos,
  resourcesToMesos,
} from './mesos.ts';
export * from './quantity.ts';
export {
  addRequests,
  addResources,
  countPorts,
  mergePortRanges,
  portsToRanges,
  subtractRequest,
  takePorts,
} from './resources.ts';
export * from './types.ts';
