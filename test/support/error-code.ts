/** The stable `code` of what `f` throws, or 'no error' when it returns (for tests of refusals). */
export function thrownCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return 'no error';
}
