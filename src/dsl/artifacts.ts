import { isPlainObject } from './data.ts';
import { invalidArgument } from './errors.ts';
import type { ArtifactOutput, Parameter } from './manifest.ts';

export interface DataArtifactInit {
  name: string;
  /** the Scala DSL's form of the partition */
  params?: Parameter[];
  partition?: Record<string, unknown>;
  /** outputs only: where the data lives, e.g. an s3:// URI */
  location?: string;
}

/**
 * A data artifact reference for `inputs`, `outputs` and `Trigger.artifact`:
 * `DataArtifact("views", { country: "${country}" })`, or in the Scala DSL's style
 * `DataArtifact({ name: "views", params: [Parameter.string("country", "US")] })`.
 * Partition values compare as strings, so they are written as strings (numbers and booleans
 * converted); a parameter given by expression becomes the template `${expression}`. An output
 * may say where its data lives: `DataArtifact("model", { dateint: "${dateint}" }, { location })`.
 */
export function DataArtifact(
  nameOrInit: string | DataArtifactInit,
  partition?: Record<string, unknown>,
  options: { location?: string } = {},
): ArtifactOutput {
  const init: DataArtifactInit =
    typeof nameOrInit === 'string' ? { name: nameOrInit, partition, location: options.location } : nameOrInit;
  if (!isPlainObject(init)) throw invalidArgument('DataArtifact()', 'a name and a partition', nameOrInit);
  const where = `DataArtifact(${JSON.stringify(init.name)})`;
  if (typeof init.name !== 'string' || init.name === '') {
    throw invalidArgument('DataArtifact(): name', 'a non-empty string', init.name);
  }
  const out: Record<string, string> = {};
  if (init.partition !== undefined) {
    if (!isPlainObject(init.partition)) throw invalidArgument(`${where}: partition`, 'a map', init.partition);
    for (const [key, value] of Object.entries(init.partition))
      out[key] = partitionValue(`${where}: ${key}`, value);
  }
  for (const param of init.params ?? []) {
    out[param.name] =
      param.expression !== undefined
        ? `\${${param.expression}}`
        : partitionValue(`${where}: ${param.name}`, param.value);
  }
  const ref: ArtifactOutput = { name: init.name };
  if (Object.keys(out).length > 0) ref.partition = out;
  if (init.location !== undefined) {
    if (typeof init.location !== 'string' || init.location === '') {
      throw invalidArgument(`${where}: location`, 'a non-empty string', init.location);
    }
    ref.location = init.location;
  }
  return ref;
}

function partitionValue(where: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)))
    return String(value);
  throw invalidArgument(where, 'a string, number or boolean', value);
}
