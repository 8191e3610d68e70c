import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_RECORD_BYTES,
  decodeJsonRecord,
  encodeJsonRecord,
  encodeRecord,
  RecordIoDecoder,
  RecordIoError,
} from './recordio.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();

function bytes(s: string): Uint8Array {
  return enc.encode(s);
}

function join(chunks: Uint8Array[]): Uint8Array {
  const n = chunks.reduce((a, c) => a + c.length, 0);
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Splits `all` at the given cut points (sorted, deduplicated, within range). */
function split(all: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, all.length]) {
    out.push(all.subarray(prev, p));
    prev = p;
  }
  return out;
}

function decodeAll(chunks: Uint8Array[], max?: number): string[] {
  const d = new RecordIoDecoder(max === undefined ? {} : { maxRecordBytes: max });
  const out: string[] = [];
  for (const c of chunks) for (const r of d.push(c)) out.push(dec.decode(r));
  d.end();
  return out;
}

describe('RecordIO encoder', () => {
  it('prefixes the UTF-8 byte length, not the character count', () => {
    // "é" is 2 bytes, "😀" is 4 bytes (2 UTF-16 code units).
    expect(dec.decode(encodeRecord('é😀'))).toBe('6\né😀');
    expect(dec.decode(encodeJsonRecord({ type: 'HEARTBEAT' }))).toBe('20\n{"type":"HEARTBEAT"}');
  });
  it('refuses an empty record (the length is never 0)', () => {
    expect(() => encodeRecord('')).toThrow(RangeError);
  });
});

describe('RecordIO decoder', () => {
  it('decodes records split one byte at a time, including a multi-byte character and a length prefix', () => {
    const all = join([encodeRecord('{"a":"é😀"}'), encodeRecord('x'.repeat(123))]);
    const chunks = [...all].map((b) => Uint8Array.of(b));
    expect(decodeAll(chunks)).toEqual(['{"a":"é😀"}', 'x'.repeat(123)]);
  });

  it('decodes a multi-byte character split between two chunks', () => {
    const all = encodeRecord('😀');
    // "4\n" then the first two bytes of the emoji, then the rest.
    expect(decodeAll([all.subarray(0, 4), all.subarray(4)])).toEqual(['😀']);
  });

  it('decodes a length prefix split between chunks', () => {
    const all = encodeRecord('y'.repeat(1234));
    expect(decodeAll([all.subarray(0, 2), all.subarray(2, 3), all.subarray(3)])).toEqual(['y'.repeat(1234)]);
  });

  it('skips empty lines before a length line', () => {
    expect(decodeAll([bytes('\n\r\n3\nabc\n2\nde')])).toEqual(['abc', 'de']);
  });

  it('returns several records from one chunk', () => {
    expect(decodeAll([bytes('1\na1\nb2\ncd')])).toEqual(['a', 'b', 'cd']);
  });

  it('rejects garbage length prefixes with a clear error, in every form', () => {
    const cases: [string, RegExp][] = [
      ['abc\n', /expected a decimal record length at byte 0, got 'a'/],
      ['-5\nhello', /got '-'/],
      ['+5\nhello', /got '\+'/],
      ['5 \nhello', /at byte 1, got ' '/],
      ['0x10\n', /got 'x'/],
      ['1e3\n', /got 'e'/],
      ['0\n', /record length 0/],
      ['5\r\nhello', /byte 0x0d/],
      ['\u0000', /byte 0x00/],
      ['٣\n', /byte 0xd9/], // Arabic-Indic digit three: not an ASCII digit
      [`${'0'.repeat(21)}1\n`, /too long/],
    ];
    for (const [input, msg] of cases) {
      const d = new RecordIoDecoder();
      let err: unknown;
      try {
        d.push(bytes(input));
      } catch (e) {
        err = e;
      }
      expect(err, input).toBeInstanceOf(RecordIoError);
      expect((err as RecordIoError).code, input).toBe('RECORDIO_BAD_LENGTH');
      expect((err as Error).message, input).toMatch(msg);
    }
  });

  it('rejects a record over the limit as soon as its length prefix passes it, before buffering', () => {
    const d = new RecordIoDecoder({ maxRecordBytes: 100 });
    expect(d.push(bytes('100\n'))).toEqual([]);
    const d2 = new RecordIoDecoder({ maxRecordBytes: 100 });
    // "101" fails at its last digit; a huge prefix fails without waiting for the LF.
    expect(() => d2.push(bytes('101'))).toThrow(/exceeds the limit of 100 bytes/);
    const d3 = new RecordIoDecoder();
    const err = (() => {
      try {
        d3.push(bytes('99999999999999999999999'));
      } catch (e) {
        return e as RecordIoError;
      }
    })();
    expect(err?.code).toBe('RECORDIO_TOO_LARGE');
    expect(err?.message).toContain(String(DEFAULT_MAX_RECORD_BYTES));
  });

  it('stays failed after an error (the stream is out of sync)', () => {
    const d = new RecordIoDecoder();
    expect(() => d.push(bytes('x'))).toThrow(RecordIoError);
    expect(() => d.push(bytes('1\na'))).toThrow(/expected a decimal record length/);
  });

  it('reports a stream cut inside a record or a length', () => {
    const d = new RecordIoDecoder();
    d.push(bytes('10\nabc'));
    expect(() => d.end()).toThrow(/7 bytes short of a 10-byte record/);
    const d2 = new RecordIoDecoder();
    d2.push(bytes('12'));
    expect(() => d2.end()).toThrow(/inside a record length/);
    const d3 = new RecordIoDecoder();
    d3.push(bytes('1\na\n'));
    expect(() => d3.end()).not.toThrow();
  });

  it('rejects an invalid maximum', () => {
    expect(() => new RecordIoDecoder({ maxRecordBytes: 0 })).toThrow(RangeError);
    expect(() => new RecordIoDecoder({ maxRecordBytes: 1.5 })).toThrow(RangeError);
  });

  it('property: any chunking of any encoded sequence decodes to the same records', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }), { maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (records, cuts) => {
          const all = join(records.map((r) => encodeRecord(r)));
          expect(decodeAll(split(all, cuts))).toEqual(records);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: arbitrary binary payloads survive any chunking byte for byte', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 64 }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (records, cuts) => {
          const all = join(records.map((r) => encodeRecord(r)));
          const d = new RecordIoDecoder();
          const got: Uint8Array[] = [];
          for (const c of split(all, cuts)) got.push(...d.push(c));
          d.end();
          expect(got.map((g) => [...g])).toEqual(records.map((r) => [...r]));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: a record within the limit decodes, one above it fails, whatever the chunking', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.array(fc.nat(), { maxLength: 10 }), (len, cuts) => {
        const all = encodeRecord('z'.repeat(len));
        const limit = 150;
        if (len <= limit) expect(decodeAll(split(all, cuts), limit)).toEqual(['z'.repeat(len)]);
        else expect(() => decodeAll(split(all, cuts), limit)).toThrow(/exceeds the limit of 150 bytes/);
      }),
    );
  });
});

describe('JSON records', () => {
  it('decodes JSON and rejects invalid UTF-8 and invalid JSON with codes', () => {
    expect(decodeJsonRecord(bytes('{"a":"é"}'))).toEqual({ a: 'é' });
    const bad = (r: Uint8Array) => {
      try {
        decodeJsonRecord(r);
      } catch (e) {
        return (e as RecordIoError).code;
      }
    };
    // a lone continuation byte; a truncated 2-byte sequence; an overlong encoding of '/'
    expect(bad(Uint8Array.of(0x80))).toBe('RECORDIO_BAD_UTF8');
    expect(bad(Uint8Array.of(0x22, 0xc3, 0x22))).toBe('RECORDIO_BAD_UTF8');
    expect(bad(Uint8Array.of(0xc0, 0xaf))).toBe('RECORDIO_BAD_UTF8');
    expect(bad(bytes('{"a":'))).toBe('RECORDIO_BAD_JSON');
  });
});
