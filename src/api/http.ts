// Request helpers shared by the route plugins: zod parsing into problem details, paging.
import type { z } from 'zod';
import { ApiError } from './problems.ts';

/** Parses `value` with `schema`; a failure is a 400 problem listing every issue with its path. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, where: string): z.infer<T> {
  const res = schema.safeParse(value);
  if (res.success) return res.data;
  const issues = res.error.issues.map((i) => ({
    path: [where, ...i.path.map(String)].join('.'),
    message: i.message,
    code: i.code,
  }));
  throw new ApiError(
    'API_BAD_REQUEST',
    `invalid ${where}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    {
      issues,
    },
  );
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Checks a path segment that names a namespace or object (DNS-1123 style). */
export function checkName(value: string, what: string): string {
  if (!NAME.test(value) || value.length > 253) {
    throw new ApiError('API_BAD_REQUEST', `${what} "${value}": expected lowercase letters, digits and '-'`);
  }
  return value;
}

export function pageLimit(raw: unknown, max = 1000, name = 'limit'): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new ApiError('API_BAD_REQUEST', `${name}: expected an integer from 1 to ${max}, got "${raw}"`);
  }
  return n;
}

export type Query = Record<string, string | undefined>;
