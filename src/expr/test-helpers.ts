// Helpers shared by the expression module's tests.
import { expect } from 'vitest';
import { ExprError } from './errors.ts';

/** Runs `f`, which must throw an ExprError; returns it. */
export function fails(f: () => unknown): ExprError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ExprError);
    return e as ExprError;
  }
  throw new Error('expected an ExprError');
}
