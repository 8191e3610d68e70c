/**
 * Kubernetes resource quantities (`500m`, `8Gi`, `1e3`, `1.5`, `100M`) with exact arithmetic.
 *
 * A quantity is held as a bigint count of nano-units (10^-9), the finest precision Kubernetes
 * keeps; anything finer is rounded up, as Kubernetes does. Sums and differences are therefore
 * exact: adding and removing thousands of task requests never drifts the way floats do.
 */

export type QuantityFormat = 'DecimalSI' | 'BinarySI' | 'DecimalExponent';

export interface Quantity {
  /** The value in nano-units (value * 10^9), exact. */
  readonly nanos: bigint;
  /** How the value was written; formatQuantity keeps to it, as Kubernetes' canonical form does. */
  readonly format: QuantityFormat;
}

export class QuantityError extends Error {
  readonly code = 'QUANTITY_INVALID';
  readonly input: string;
  constructor(input: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QuantityError';
    this.input = input;
  }
}

const NANO = 1_000_000_000n;

const BINARY_SUFFIXES: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};

/** Decimal SI suffixes as powers of ten. */
const DECIMAL_SUFFIXES: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  '': 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

const EXPECTED =
  'expected a number with an optional suffix: n, u, m, k, M, G, T, P, E (powers of 1000), ' +
  'Ki, Mi, Gi, Ti, Pi, Ei (powers of 1024) or an exponent, e.g. 500m, 8Gi, 1e3, 1.5';

// Same grammar as Kubernetes' resource.ParseQuantity: signed decimal number, then one suffix.
const QUANTITY_PATTERN = /^([+-]?)(\d*)(?:\.(\d*))?(.*)$/;
const EXPONENT_PATTERN = /^[eE]([+-]?\d+)$/;
/** Exponents beyond this would build absurd bigints; no real resource needs them. */
const MAX_EXPONENT = 60;

function pow10(exp: number): bigint {
  return 10n ** BigInt(exp);
}

/** Ceiling division for a non-negative divisor, matching Kubernetes' round-up of sub-nano values. */
function ceilDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a > 0n ? q + 1n : q;
}

/**
 * Parses a Kubernetes quantity. Numbers are accepted too (YAML `cpu: 2`).
 * @throws QuantityError (code QUANTITY_INVALID) naming the input and what was expected.
 */
export function parseQuantity(input: string | number | Quantity): Quantity {
  if (typeof input === 'object' && input !== null && typeof input.nanos === 'bigint') return input;
  if (typeof input === 'number') {
    if (!Number.isFinite(input))
      throw new QuantityError(String(input), `invalid quantity ${input}: ${EXPECTED}`);
    return parseQuantity(String(input));
  }
  if (typeof input !== 'string') {
    throw new QuantityError(String(input), `invalid quantity (a ${typeof input}): ${EXPECTED}`);
  }
  const text = input.trim();
  const fail = (why?: string): never => {
    throw new QuantityError(input, `invalid quantity "${input}": ${why ? `${why}; ` : ''}${EXPECTED}`);
  };
  const m = QUANTITY_PATTERN.exec(text);
  if (!m || text === '') return fail();
  const [, sign, whole = '', fraction = '', suffix = ''] = m;
  if (whole === '' && fraction === '') return fail('no digits');
  const digits = BigInt(`${whole}${fraction}` || '0');
  // value = digits * 10^-(fraction length) * multiplier
  let numerator = digits;
  let exponent = -fraction.length;
  let format: QuantityFormat = 'DecimalSI';
  if (suffix in BINARY_SUFFIXES) {
    numerator *= BINARY_SUFFIXES[suffix]!;
    format = 'BinarySI';
  } else if (suffix in DECIMAL_SUFFIXES) {
    exponent += DECIMAL_SUFFIXES[suffix]!;
  } else {
    const e = EXPONENT_PATTERN.exec(suffix);
    if (!e) return fail(`unknown suffix "${suffix}"`);
    const n = Number(e[1]);
    if (Math.abs(n) > MAX_EXPONENT) return fail(`exponent ${n} is out of range`);
    exponent += n;
    format = 'DecimalExponent';
  }
  // Convert to nanos: multiply by 10^(exponent + 9), rounding up anything finer than a nano.
  const shift = exponent + 9;
  let nanos = shift >= 0 ? numerator * pow10(shift) : ceilDiv(numerator, pow10(-shift));
  if (sign === '-') nanos = -nanos;
  return { nanos, format };
}

/** Like parseQuantity but returns undefined instead of throwing (for validators that collect issues). */
export function tryParseQuantity(input: string | number): Quantity | undefined {
  try {
    return parseQuantity(input);
  } catch (err) {
    if (err instanceof QuantityError) return undefined;
    throw err;
  }
}

export function quantityFromNanos(nanos: bigint, format: QuantityFormat = 'DecimalSI'): Quantity {
  return { nanos, format };
}

export function addQuantity(a: Quantity, b: Quantity): Quantity {
  return { nanos: a.nanos + b.nanos, format: a.format };
}

export function subtractQuantity(a: Quantity, b: Quantity): Quantity {
  return { nanos: a.nanos - b.nanos, format: a.format };
}

export function multiplyQuantity(a: Quantity, factor: number | bigint): Quantity {
  if (typeof factor === 'number' && !Number.isInteger(factor)) {
    throw new QuantityError(String(factor), `quantity factor must be an integer, got ${factor}`);
  }
  return { nanos: a.nanos * BigInt(factor), format: a.format };
}

/** -1, 0 or 1. */
export function compareQuantity(a: Quantity, b: Quantity): number {
  return a.nanos < b.nanos ? -1 : a.nanos > b.nanos ? 1 : 0;
}

function toQuantity(q: Quantity | string | number): Quantity {
  return typeof q === 'object' ? q : parseQuantity(q);
}

function toSafeNumber(v: bigint, input: Quantity | string | number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) {
    throw new QuantityError(
      String(typeof input === 'object' ? formatQuantity(input) : input),
      `quantity is too large`,
    );
  }
  return n;
}

/** CPU in millicores, rounded up (Kubernetes' MilliValue): `500m` -> 500, `1.5` -> 1500. */
export function cpuMillis(q: Quantity | string | number): number {
  return toSafeNumber(ceilDiv(toQuantity(q).nanos, 1_000_000n), q);
}

/** Whole units (bytes for memory and storage), rounded up (Kubernetes' Value): `8Gi` -> 8589934592. */
export function bytes(q: Quantity | string | number): number {
  return toSafeNumber(ceilDiv(toQuantity(q).nanos, NANO), q);
}

/** Alias of bytes() for countable resources (GPUs, pods). */
export const units = bytes;

const BINARY_DESCENDING = Object.entries(BINARY_SUFFIXES).reverse();
const DECIMAL_DESCENDING: [string, number][] = [
  ['E', 18],
  ['P', 15],
  ['T', 12],
  ['G', 9],
  ['M', 6],
  ['k', 3],
  ['', 0],
  ['m', -3],
  ['u', -6],
  ['n', -9],
];

/**
 * Canonical text of a quantity, as Kubernetes prints it: the largest suffix that keeps the
 * mantissa an integer (`1500m`, `8Gi`, `2`, `100M`). BinarySI falls back to decimal for values that
 * are not whole multiples of 1024 (like Kubernetes); DecimalExponent prints `e` exponents.
 */
export function formatQuantity(q: Quantity): string {
  const negative = q.nanos < 0n;
  const abs = negative ? -q.nanos : q.nanos;
  const sign = negative ? '-' : '';
  if (abs === 0n) return '0';
  if (q.format === 'BinarySI' && abs % NANO === 0n) {
    const whole = abs / NANO;
    for (const [suffix, mult] of BINARY_DESCENDING) {
      if (whole % mult === 0n) return `${sign}${whole / mult}${suffix}`;
    }
    if (whole < 1024n) return `${sign}${whole}`;
  }
  for (const [suffix, exp] of DECIMAL_DESCENDING) {
    const div = pow10(exp + 9);
    if (abs % div === 0n) {
      const mantissa = abs / div;
      if (q.format === 'DecimalExponent') return `${sign}${mantissa}${exp === 0 ? '' : `e${exp}`}`;
      return `${sign}${mantissa}${suffix}`;
    }
  }
  return `${sign}${abs}n`;
}
