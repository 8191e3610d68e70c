// DataArtifact: a named data set partition that was announced (produced).
import { z } from 'zod';
import { ConditionsSchema, PartitionSchema, resourceSchema, TimestampSchema } from './common.ts';

export const DataArtifactSpecSchema = z
  .strictObject({
    name: z.string().min(1).describe('Data set name, matched against step inputs and artifact triggers.'),
    partition: PartitionSchema.optional(),
    location: z.string().optional().describe('Where the data lives, e.g. an s3:// URI.'),
    producer: z
      .strictObject({
        workflow: z.string().optional(),
        run: z.string().optional(),
        step: z.string().optional(),
      })
      .optional()
      .describe('Set when a step announced it.'),
  })
  .describe('A data set partition that was announced (produced).');
export type DataArtifactSpec = z.infer<typeof DataArtifactSpecSchema>;

export const DataArtifactSchema = resourceSchema(
  'DataArtifact',
  DataArtifactSpecSchema,
  z.strictObject({
    announcedAt: TimestampSchema.optional(),
    conditions: ConditionsSchema.optional(),
  }),
);
export type DataArtifact = z.infer<typeof DataArtifactSchema>;
