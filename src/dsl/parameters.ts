import { invalidArgument } from './errors.ts';
import type { Parameter as ParameterManifest, ParameterType, Value } from './manifest.ts';

/** `{ name, value }` or `{ name, expression }` (an expression is evaluated when the run starts). */
export type ParameterInit<V extends Value = Value> =
  | { name: string; value: V; expression?: undefined }
  | { name: string; expression: string; value?: undefined };

type TypedParameter<V extends Value> = {
  /** `Parameter.long("dateint", 20171107)` */
  (name: string, value: V): ParameterManifest;
  /** `Parameter.long({ name: "dateint", expression: "tsToDateInt(RUN_TS)" })` */
  (init: ParameterInit<V>): ParameterManifest;
};

function typed<V extends Value>(type: ParameterType | undefined): TypedParameter<V> {
  const where = `Parameter.${type ?? 'of'}`;
  return ((nameOrInit: string | ParameterInit<V>, value?: V): ParameterManifest => {
    if (typeof nameOrInit === 'string') return make(where, type, { name: nameOrInit, value: value as V });
    if (nameOrInit === null || typeof nameOrInit !== 'object') {
      throw invalidArgument(where, 'a name and a value, or { name, value | expression }', nameOrInit);
    }
    return make(where, type, nameOrInit);
  }) as TypedParameter<V>;
}

function make(where: string, type: ParameterType | undefined, init: ParameterInit): ParameterManifest {
  if (typeof init.name !== 'string' || init.name === '') {
    throw invalidArgument(`${where}: name`, 'a non-empty string', init.name);
  }
  const hasValue = init.value !== undefined;
  const hasExpression = init.expression !== undefined;
  if (hasValue === hasExpression) {
    throw invalidArgument(`${where}("${init.name}")`, 'exactly one of value or expression', init as unknown);
  }
  const expression: unknown = init.expression;
  if (hasExpression && typeof expression !== 'string') {
    throw invalidArgument(`${where}("${init.name}"): expression`, 'a string', expression);
  }
  const parameter: ParameterManifest = { name: init.name };
  if (type) parameter.type = type;
  if (hasValue) parameter.value = init.value;
  else parameter.expression = init.expression;
  return parameter;
}

/**
 * Workflow and step parameters, as in the Scala DSL's `Parameter.STRING(name, value)` and
 * `Parameter.LONG(name, expression = ...)`. `Parameter.of` / `Parameter.expr` leave the type
 * out (it is then inferred from the value), e.g. for the parameters passed to a subworkflow.
 */
export const Parameter = {
  string: typed<string>('string'),
  long: typed<number>('long'),
  double: typed<number>('double'),
  boolean: typed<boolean>('boolean'),
  list: typed<Value[]>('list'),
  map: typed<{ [k: string]: Value }>('map'),
  of: typed<Value>(undefined),
  /** An untyped parameter whose value is an expression: `Parameter.expr("day", "dayFromDateInt(dateint)")`. */
  expr(name: string, expression: string): ParameterManifest {
    return make('Parameter.expr', undefined, { name, expression });
  },
};
