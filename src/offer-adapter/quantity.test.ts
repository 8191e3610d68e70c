import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addQuantity,
  bytes,
  compareQuantity,
  cpuMillis,
  formatQuantity,
  parseQuantity,
  QuantityError,
  subtractQuantity,
  tryParseQuantity,
} from './quantity.ts';

describe('parseQuantity', () => {
  it.each([
    ['500m', 500_000_000n],
    ['1', 1_000_000_000n],
    ['1.5', 1_500_000_000n],
    ['.5', 500_000_000n],
    ['2.', 2_000_000_000n],
    ['1e3', 1_000_000_000_000n],
    ['1E3', 1_000_000_000_000n],
    ['1e-3', 1_000_000n],
    ['100M', 100_000_000n * 1_000_000_000n],
    ['8Gi', 8n * 1024n ** 3n * 1_000_000_000n],
    ['1Ki', 1024n * 1_000_000_000n],
    ['10k', 10_000n * 1_000_000_000n],
    ['250u', 250_000n],
    ['7n', 7n],
    ['-2', -2_000_000_000n],
    ['+3m', 3_000_000n],
    ['0', 0n],
  ])('%s', (text, nanos) => {
    expect(parseQuantity(text).nanos).toBe(nanos);
  });

  it('accepts numbers as YAML gives them', () => {
    expect(parseQuantity(2).nanos).toBe(2_000_000_000n);
    expect(parseQuantity(0.25).nanos).toBe(250_000_000n);
    expect(parseQuantity(1e21).nanos).toBe(10n ** 30n);
  });

  it('rounds values finer than a nano up, as Kubernetes does', () => {
    expect(parseQuantity('0.0000000001').nanos).toBe(1n);
    expect(parseQuantity('1.0000000001').nanos).toBe(1_000_000_001n);
  });

  it.each(['', 'abc', '1.2.3', '5 Gi', '5gi', '5mi', 'Gi', '1e', '1e999', '--1', '1Kii'])(
    'rejects %j with QUANTITY_INVALID and says what was expected',
    (text) => {
      try {
        parseQuantity(text);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(QuantityError);
        expect((err as QuantityError).code).toBe('QUANTITY_INVALID');
        expect((err as Error).message).toContain('expected a number with an optional suffix');
        expect((err as Error).message).toContain(JSON.stringify(text));
      }
    },
  );

  it('rejects non-finite numbers', () => {
    expect(() => parseQuantity(Number.NaN)).toThrow(QuantityError);
    expect(() => parseQuantity(Number.POSITIVE_INFINITY)).toThrow(QuantityError);
    expect(tryParseQuantity('x')).toBeUndefined();
  });
});

describe('cpuMillis and bytes', () => {
  it('converts to integer units, rounding up', () => {
    expect(cpuMillis('500m')).toBe(500);
    expect(cpuMillis('1.5')).toBe(1500);
    expect(cpuMillis(2)).toBe(2000);
    expect(cpuMillis('100u')).toBe(1);
    expect(bytes('8Gi')).toBe(8 * 1024 ** 3);
    expect(bytes('100M')).toBe(100_000_000);
    expect(bytes('1.5Ki')).toBe(1536);
    expect(bytes('1500m')).toBe(2);
  });

  it('refuses values beyond safe integers', () => {
    expect(() => bytes('100Ei')).toThrow(QuantityError);
  });
});

describe('formatQuantity', () => {
  it.each([
    ['500m', '500m'],
    ['1.5', '1500m'],
    ['2', '2'],
    ['2000', '2k'],
    ['8Gi', '8Gi'],
    ['1536Mi', '1536Mi'],
    ['1024Mi', '1Gi'],
    ['0.5Gi', '512Mi'],
    ['100M', '100M'],
    ['1e3', '1e3'],
    ['0', '0'],
    ['-250m', '-250m'],
    ['7n', '7n'],
  ])('%s -> %s', (input, out) => {
    expect(formatQuantity(parseQuantity(input))).toBe(out);
  });

  it('round-trips through parse', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }),
        fc.constantFrom('DecimalSI', 'BinarySI', 'DecimalExponent'),
        (nanos, format) => {
          const q = { nanos, format } as const;
          expect(parseQuantity(formatQuantity(q)).nanos).toBe(nanos);
        },
      ),
    );
  });
});

describe('arithmetic', () => {
  it('does not drift after thousands of adds and removes (floats would)', () => {
    const requests = ['100m', '0.1', '333m', '1.7', '2Gi', '0.3'].map((s) => parseQuantity(s));
    let total = parseQuantity('0');
    let floatTotal = 0;
    for (let i = 0; i < 10_000; i++) {
      const r = requests[i % requests.length]!;
      total = addQuantity(total, r);
      floatTotal += Number(r.nanos) / 1e9;
    }
    for (let i = 0; i < 10_000; i++) {
      const r = requests[i % requests.length]!;
      total = subtractQuantity(total, r);
      floatTotal -= Number(r.nanos) / 1e9;
    }
    expect(total.nanos).toBe(0n);
    expect(floatTotal).not.toBe(0); // the reason this module exists
  });

  it('compares', () => {
    expect(compareQuantity(parseQuantity('1'), parseQuantity('1000m'))).toBe(0);
    expect(compareQuantity(parseQuantity('1Ki'), parseQuantity('1k'))).toBe(1);
    expect(compareQuantity(parseQuantity('999m'), parseQuantity('1'))).toBe(-1);
  });
});
