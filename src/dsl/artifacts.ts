import { isPlainObject } from './data.ts';
import { invalidArgument } from './errors.ts';
import type { ArtifactRef, Parameter } from './manifest.ts';

/**
 * A data artifact reference for `inputs`, `outputs` and `Trigger.artifact`:
 * `DataArtifact("views", { country: "${country}" })`, or in the Scala DSL's style
 * `DataArtifact({ name: "views", params: [Parameter.string("country", "US")] })`.
 * Partition values are strings (numbers and booleans are written as strings); a parameter
 * given by expression becomes the template `${expression}`.
 */
export function DataArtifact(
  nameOrInit: string | { name: string; params?: Parameter[]; partition?: Record<string, unknown> },
  partition?: Record<string, unknown>,
): ArtifactRef {
  const init = typeof nameOrInit === 'string' ? { name: nameOrInit, partition } : nameOrInit;
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
  return Object.keys(out).length > 0 ? { name: init.name, partition: out } : { name: init.name };
}

function partitionValue(where: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value)))
    return String(value);
  throw invalidArgument(where, 'a string, number or boolean', value);
}
