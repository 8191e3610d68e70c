/** A step that cannot run here (no container runtime, a copy path outside the roots, ...): `code` is stable. */
export class StepSetupError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StepSetupError';
    this.code = code;
  }
}
