// WorkflowRunShard: part of one WorkflowRun's per-step-instance state, kept outside the run so
// that no object comes near the apiserver's size limits (1.5 MiB per request, etcd's object
// limit): a 10,000-way foreach is ~20 shards of at most 500 instances / 512 KiB each. Written
// only by the operator's store (src/store/kubernetes.ts), owned by the run (garbage-collected
// with it). Not in the `meson` category: `kubectl get meson` stays about the user's objects;
// `kubectl get mwfrs -l meson.dev/run=NAME` lists a run's shards.
import { z } from 'zod';
import { freeForm, resourceSchema } from './common.ts';

const Record = freeForm(z.record(z.string(), z.unknown()), 'Engine data (free-form).');

export const ShardInstanceSchema = z.strictObject({
  id: z.string().min(1).describe('Step-instance id.'),
  phase: z.string().min(1),
  data: Record,
});

export const ShardTaskSchema = z.strictObject({
  instance: z.string().min(1).describe('Step-instance id.'),
  attempt: z.number().int().nonnegative(),
  state: z.enum(['queued', 'launched']),
  data: Record,
  launch: freeForm(z.record(z.string(), z.unknown()), 'Launcher data (free-form).').optional(),
});

export const WorkflowRunShardSpecSchema = z
  .strictObject({
    run: z.string().min(1).describe('The WorkflowRun (same namespace).'),
    index: z.number().int().nonnegative().describe("Position of this shard among the run's shards."),
    instances: z.array(ShardInstanceSchema).optional().describe('Step instances, in creation order.'),
    tasks: z.array(ShardTaskSchema).optional().describe('Queued or launched step attempts.'),
  })
  .describe("Part of a WorkflowRun's step instances and tasks (operator mode; written by the operator).");

export const WorkflowRunShardSchema = resourceSchema(
  'WorkflowRunShard',
  WorkflowRunShardSpecSchema,
  z.strictObject({}),
);
export type WorkflowRunShard = z.infer<typeof WorkflowRunShardSchema>;
