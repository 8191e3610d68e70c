// WorkflowRunShard: part of one WorkflowRun's per-step-instance state, kept outside the run so
// that no object comes near the apiserver's size limits (1.5 MiB per request, etcd's object
// limit): a 10,000-way foreach is ~100 shards of at most 100 instances (shardInstances) / 512 KiB each. Written
// only by the operator's store (src/store/kubernetes.ts), owned by the run (garbage-collected
// with it). Not in the `meson` category: `kubectl get meson` stays about the user's objects;
// `kubectl get mwfrs -l meson.dev/run=NAME` lists a run's shards.
import { z } from 'zod';
import { resourceSchema } from './common.ts';

export const WorkflowRunShardSpecSchema = z
  .strictObject({
    run: z.string().min(1).describe('The WorkflowRun (same namespace).'),
    index: z.number().int().nonnegative().describe("Position of this shard among the run's shards."),
    instances: z.number().int().nonnegative().describe('Step instances in this shard.'),
    tasks: z.number().int().nonnegative().describe('Queued or launched step attempts in this shard.'),
    entries: z
      .string()
      .describe(
        'JSON of {instances: [{id, phase, data}], tasks: [{instance, attempt, state, data, launch}]}: one ' +
          'string, so that the apiserver validates and tracks three fields rather than every field of ' +
          '500 entries.',
      ),
  })
  .describe("Part of a WorkflowRun's step instances and tasks (operator mode; written by the operator).");

export const WorkflowRunShardSchema = resourceSchema(
  'WorkflowRunShard',
  WorkflowRunShardSpecSchema,
  z.strictObject({}),
);
export type WorkflowRunShard = z.infer<typeof WorkflowRunShardSchema>;
