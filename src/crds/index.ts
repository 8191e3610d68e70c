// The API of Meson for Kubernetes as zod schemas: the one source of truth for the TypeScript
// types, the validator (validate.ts), the CRDs' openAPIV3Schema (scripts/generate-crds.ts), the
// REST schemas and docs/api-reference.md.
export * from './artifact.ts';
export * from './common.ts';
export * from './printer.ts';
export * from './run.ts';
export * from './shard.ts';
export * from './workflow.ts';
