import { describe, expect, it } from 'vitest';
import {
  kubernetesToMesos,
  mesosToKubernetes,
  resourcesFromKubernetes,
  resourcesToKubernetes,
} from './kubernetes-resources.ts';
import { mergeHostOffers } from './merge.ts';
import {
  attributesFromMesos,
  bytesToMegabytes,
  type MesosResource,
  offerFromMesos,
  resourcesFromMesos,
  resourcesToMesos,
} from './mesos.ts';
import { QuantityError } from './quantity.ts';
import { countPorts, mergePortRanges, takePorts } from './resources.ts';
import type { Offer } from './types.ts';

const MiB = 1024 * 1024;

const scalar = (name: string, value: number): MesosResource => ({ name, type: 'SCALAR', scalar: { value } });

describe('Mesos resources', () => {
  it('reads cpus, mem and disk (MB = 2^20 bytes), gpus, ports and custom scalars', () => {
    const r = resourcesFromMesos([
      scalar('cpus', 2.5),
      scalar('mem', 1024),
      scalar('disk', 0.5),
      scalar('gpus', 1),
      scalar('fpgas', 2),
      { name: 'ports', type: 'RANGES', ranges: { range: [{ begin: 31000, end: 31009 }] } },
      { name: 'zones', type: 'SET', set: { item: ['a'] } },
    ]);
    expect(r).toEqual({
      cpuMillis: 2500,
      memoryBytes: 1024 * MiB,
      diskBytes: 512 * 1024,
      gpus: 1,
      scalars: { fpgas: 2 },
      ports: [{ begin: 31000, end: 31009 }],
    });
  });

  it('sums entries of one name reserved for different roles', () => {
    const r = resourcesFromMesos([
      { ...scalar('cpus', 1), role: '*' },
      { ...scalar('cpus', 0.25), role: 'meson' },
      { name: 'ports', type: 'RANGES', ranges: { range: [{ begin: '10', end: '12' }] } },
      { name: 'ports', type: 'RANGES', ranges: { range: [{ begin: 13, end: 20 }] } },
    ]);
    expect(r.cpuMillis).toBe(1250);
    expect(r.ports).toEqual([{ begin: 10, end: 20 }]);
  });

  it('writes task resources back, leaving zeros out and rounding memory up', () => {
    expect(
      resourcesToMesos(
        { cpuMillis: 1500, memoryBytes: 512 * MiB, diskBytes: 0, gpus: 0, ports: 2 },
        { role: 'meson', assignedPorts: [31000, 31001] },
      ),
    ).toEqual([
      { name: 'cpus', type: 'SCALAR', scalar: { value: 1.5 }, role: 'meson' },
      { name: 'mem', type: 'SCALAR', scalar: { value: 512 }, role: 'meson' },
      { name: 'ports', type: 'RANGES', ranges: { range: [{ begin: 31000, end: 31001 }] }, role: 'meson' },
    ]);
    expect(bytesToMegabytes(1)).toBe(0.001);
    expect(bytesToMegabytes(MiB + 1)).toBe(1.001);
    expect(bytesToMegabytes(2 ** 50)).toBe(2 ** 30);
  });

  it('round-trips every Mesos scalar with 3 decimals exactly', () => {
    for (let thousandths = 0; thousandths < 5000; thousandths += 7) {
      const mb = thousandths / 1000;
      const back = resourcesToMesos(resourcesFromMesos([scalar('mem', mb), scalar('cpus', mb)]));
      expect(back.find((x) => x.name === 'mem')?.scalar?.value ?? 0).toBe(mb);
      expect(back.find((x) => x.name === 'cpus')?.scalar?.value ?? 0).toBe(mb);
    }
  });

  it('flattens attributes the way Mesos prints them', () => {
    expect(
      attributesFromMesos([
        { name: 'rack', type: 'TEXT', text: { value: 'r1' } },
        { name: 'level', type: 'SCALAR', scalar: { value: 3 } },
        { name: 'range', type: 'RANGES', ranges: { range: [{ begin: 1, end: 10 }] } },
        { name: 'zones', type: 'SET', set: { item: ['a', 'b'] } },
      ]),
    ).toEqual({ rack: 'r1', level: '3', range: '[1-10]', zones: '{a,b}' });
  });

  it('makes an Offer with an expiry', () => {
    const o = offerFromMesos(
      {
        id: { value: 'o1' },
        agent_id: { value: 'a1' },
        hostname: 'h1',
        resources: [scalar('cpus', 4), scalar('mem', 8000)],
        attributes: [{ name: 'rack', type: 'TEXT', text: { value: 'r1' } }],
      },
      { receivedAt: 1000, ttlMs: 5000 },
    );
    expect(o).toMatchObject({
      id: 'o1',
      source: 'mesos',
      hostname: 'h1',
      agentId: 'a1',
      attributes: { rack: 'r1' },
      expiresAt: 6000,
    });
    expect(o.resources.memoryBytes).toBe(8000 * MiB);
  });
});

describe('Kubernetes resource lists', () => {
  it('reads cpu, memory, ephemeral-storage, GPUs and extended resources', () => {
    expect(
      resourcesFromKubernetes({
        cpu: '500m',
        memory: '8Gi',
        'ephemeral-storage': '100G',
        'nvidia.com/gpu': 2,
        pods: '110',
      }),
    ).toEqual({
      cpuMillis: 500,
      memoryBytes: 8 * 1024 ** 3,
      diskBytes: 100e9,
      gpus: 2,
      scalars: { pods: 110 },
    });
  });

  it('names the resource in a bad quantity error', () => {
    expect(() => resourcesFromKubernetes({ memory: '8 GB' })).toThrow(QuantityError);
    expect(() => resourcesFromKubernetes({ memory: '8 GB' })).toThrow(/resources\.memory/);
  });

  it('writes canonical quantities', () => {
    expect(
      resourcesToKubernetes({ cpuMillis: 1500, memoryBytes: 1536 * MiB, diskBytes: 0, gpus: 1 }),
    ).toEqual({
      cpu: '1500m',
      memory: '1536Mi',
      'nvidia.com/gpu': '1',
    });
  });

  it('converts Mesos <-> Kubernetes with mem/disk in MB', () => {
    expect(mesosToKubernetes([scalar('cpus', 2), scalar('mem', 1024), scalar('disk', 2048)])).toEqual({
      cpu: '2',
      memory: '1Gi',
      'ephemeral-storage': '2Gi',
    });
    expect(kubernetesToMesos({ cpu: '250m', memory: '512Mi' })).toEqual([
      scalar('cpus', 0.25),
      scalar('mem', 512),
    ]);
  });
});

describe('ports', () => {
  it('merges, counts and takes the lowest ports', () => {
    const ranges = mergePortRanges([
      { begin: 20, end: 22 },
      { begin: 10, end: 12 },
      { begin: 13, end: 13 },
    ]);
    expect(ranges).toEqual([
      { begin: 10, end: 13 },
      { begin: 20, end: 22 },
    ]);
    expect(countPorts(ranges)).toBe(7);
    expect(takePorts(ranges, 5)).toEqual({ taken: [10, 11, 12, 13, 20], left: [{ begin: 21, end: 22 }] });
    expect(takePorts(ranges, 8)).toBeUndefined();
  });
});

describe('mergeHostOffers', () => {
  const offer = (id: string, hostname: string, cpu: number, extra: Partial<Offer> = {}): Offer => ({
    id,
    source: 'mesos',
    hostname,
    resources: { cpuMillis: cpu, memoryBytes: 1000, diskBytes: 0, gpus: 0 },
    attributes: { zone: 'a' },
    ...extra,
  });

  it('sums the offers of one host and keeps the earliest expiry', () => {
    const merged = mergeHostOffers([
      offer('o1', 'h1', 1000, { expiresAt: 50 }),
      offer('o2', 'h2', 500),
      offer('o3', 'h1', 2000, { expiresAt: 30, attributes: { rack: 'r1' } }),
    ]);
    expect(merged.map((h) => h.hostname)).toEqual(['h1', 'h2']);
    expect(merged[0]!.offers.map((o) => o.id)).toEqual(['o1', 'o3']);
    expect(merged[0]!.resources.cpuMillis).toBe(3000);
    expect(merged[0]!.resources.memoryBytes).toBe(2000);
    expect(merged[0]!.capacity.cpuMillis).toBe(3000);
    expect(merged[0]!.attributes).toEqual({ zone: 'a', rack: 'r1' });
    expect(merged[0]!.expiresAt).toBe(30);
  });
});
