// Which addresses a webhook may connect to. Pure.
//
// A webhook URL is written by whoever edits a Workflow, and the server POSTs to it from inside
// the network: without a check it reaches the metadata service (169.254.169.254), the server's
// own API on loopback, or anything on the private network. Denied by default, after DNS
// resolution (the address actually connected to is the one checked): loopback, unspecified,
// link-local, private (RFC 1918, unique-local fc00::/7, site-local fec0::/10), carrier-grade NAT
// (100.64/10), multicast, broadcast, reserved and documentation ranges, the addresses of this
// machine's interfaces, and every IPv6 form that embeds an IPv4 address (::ffff:a.b.c.d,
// ::a.b.c.d, 64:ff9b::/96, 2002::/16) is judged by the IPv4 address inside. An allow-list of
// CIDRs or host names lets an operator open what they need (an internal hook service).
import { isIP } from 'node:net';

export interface Cidr {
  bytes: Uint8Array;
  prefix: number;
}

export interface AllowList {
  cidrs: Cidr[];
  /** Lower-case host names, allowed whatever they resolve to. */
  hosts: Set<string>;
}

export const EMPTY_ALLOW_LIST: AllowList = { cidrs: [], hosts: new Set() };

/** 4 or 16 bytes of an IP address in canonical text form; undefined when it is not one. */
export function ipBytes(ip: string): Uint8Array | undefined {
  const plain = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const kind = isIP(plain);
  if (kind === 4) return Uint8Array.from(plain.split('.').map(Number));
  if (kind !== 6) return undefined;
  const zone = plain.indexOf('%');
  let text = zone >= 0 ? plain.slice(0, zone) : plain;
  // a trailing dotted IPv4 part becomes two groups
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = dotted[1]!.split('.').map(Number);
    text = `${text.slice(0, -dotted[1]!.length)}${((v4[0]! << 8) | v4[1]!).toString(16)}:${((v4[2]! << 8) | v4[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = Number.parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.trim().split('/');
  if (extra !== undefined || addr === undefined) return undefined;
  const bytes = ipBytes(addr);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  const prefix = len === undefined ? max : /^\d+$/.test(len) ? Number(len) : Number.NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { bytes, prefix };
}

export function inCidr(bytes: Uint8Array, cidr: Cidr): boolean {
  if (bytes.length !== cidr.bytes.length) return false;
  for (let bit = 0; bit < cidr.prefix; bit += 8) {
    const n = Math.min(8, cidr.prefix - bit);
    const mask = (0xff << (8 - n)) & 0xff;
    if ((bytes[bit / 8]! & mask) !== (cidr.bytes[bit / 8]! & mask)) return false;
  }
  return true;
}

const cidrs = (entries: [string, string][]) => entries.map(([c, why]) => ({ cidr: parseCidr(c)!, why }));

const DENIED_V4 = cidrs([
  ['0.0.0.0/8', 'unspecified ("this network")'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'carrier-grade NAT (shared)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata)'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved or broadcast'],
]);

const DENIED_V6 = cidrs([
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fc00::/7', 'unique-local (private)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local (private)'],
  ['ff00::/8', 'multicast'],
  ['2001:db8::/32', 'documentation'],
  ['100::/64', 'discard-only'],
]);

/** IPv6 ranges that carry an IPv4 address, and where it sits. */
const EMBEDS_V4: { cidr: Cidr; at: number }[] = [
  { cidr: parseCidr('::ffff:0:0/96')!, at: 12 }, // IPv4-mapped
  { cidr: parseCidr('::/96')!, at: 12 }, // IPv4-compatible (deprecated)
  { cidr: parseCidr('64:ff9b::/96')!, at: 12 }, // NAT64
  { cidr: parseCidr('64:ff9b:1::/48')!, at: 12 }, // local-use NAT64
  { cidr: parseCidr('2002::/16')!, at: 2 }, // 6to4
];

/** Why the server must not connect to `ip` by default, or undefined when it may. */
export function deniedReason(ip: string, localAddresses: readonly string[] = []): string | undefined {
  let bytes = ipBytes(ip);
  if (!bytes) return 'not an IP address';
  if (bytes.length === 16) {
    for (const d of DENIED_V6) if (inCidr(bytes, d.cidr)) return d.why;
    const embedding = EMBEDS_V4.find((e) => inCidr(bytes!, e.cidr));
    if (embedding) bytes = bytes.slice(embedding.at, embedding.at + 4);
  }
  if (bytes.length === 4) for (const d of DENIED_V4) if (inCidr(bytes, d.cidr)) return d.why;
  for (const local of localAddresses) {
    const l = ipBytes(local);
    if (l && l.length === bytes.length && l.every((b, i) => b === bytes[i]))
      return 'an address of this server';
  }
  return undefined;
}

/**
 * Parses the allow-list: comma- or space-separated CIDRs (`10.1.2.0/24`, `::1/128`), single
 * addresses, or host names. Throws with the offending entry.
 */
export function parseAllowList(text: string | undefined): AllowList {
  const list: AllowList = { cidrs: [], hosts: new Set() };
  for (const raw of (text ?? '').split(/[\s,]+/)) {
    const entry = raw.trim();
    if (!entry) continue;
    const cidr = parseCidr(entry);
    if (cidr) list.cidrs.push(cidr);
    else if (
      /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(
        entry,
      )
    )
      list.hosts.add(entry.toLowerCase());
    else throw new Error(`webhook allow-list: "${entry}" is neither a CIDR, an IP address nor a host name`);
  }
  return list;
}

/** Whether the allow-list opens `ip` (any form of it: ::ffff:10.0.0.1 matches 10.0.0.0/8). */
export function allowedByList(ip: string, host: string, list: AllowList): boolean {
  if (list.hosts.has(host.toLowerCase().replace(/^\[|\]$/g, ''))) return true;
  const bytes = ipBytes(ip);
  if (!bytes) return false;
  const forms = [bytes];
  if (bytes.length === 16 && inCidr(bytes, EMBEDS_V4[0]!.cidr)) forms.push(bytes.slice(12));
  return list.cidrs.some((c) => forms.some((b) => inCidr(b, c)));
}
