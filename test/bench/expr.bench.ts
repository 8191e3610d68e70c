/**
 * Expression benchmark (`npm run bench expr`). Single-threaded. Prints figures, then, as its
 * last line, one JSON object.
 *
 * The engine evaluates the same few expressions for every step instance of a run (a 10,000-way
 * foreach interpolates each step field 10,000 times), so the figure that matters is the cached
 * path: evaluate/interpolate of an already-seen source. Also measured: a cold parse (cache
 * miss), parameter resolution, and the date built-ins, which go through Intl.
 */
import { performance } from 'node:perf_hooks';
import { evaluate, interpolate, parseExpression, resolveParameters } from '../../src/expr/index.ts';

const vars = {
  RUN_TS: 1510099200000,
  RUN_ID: 'daily-x7k2',
  country: 'US',
  dateint: 20171107,
  LOOP_INDEX: 3,
  item: 'part-0042',
  steps: { agg: { outputs: { rows: 1234, parts: ['a', 'b', 'c'] } } },
};

function opsPerSecond(label: string, n: number, f: (i: number) => unknown): number {
  for (let i = 0; i < Math.min(n, 2000); i++) f(i); // warm up
  const t = performance.now();
  for (let i = 0; i < n; i++) f(i);
  const perS = n / ((performance.now() - t) / 1000);
  console.log(`  ${label.padEnd(44)} ${Math.round(perS).toLocaleString('en-US').padStart(12)} /s`);
  return Math.round(perS);
}

const result: Record<string, number> = {};
console.log('cached evaluation (the engine hot path)');
result.eval_arith_per_s = opsPerSecond('x < 5 && steps.agg.outputs.rows > 100', 500_000, () =>
  evaluate('LOOP_INDEX < 5 && steps.agg.outputs.rows > 100', vars),
);
result.eval_member_per_s = opsPerSecond('steps.agg.outputs.parts[LOOP_INDEX % 3]', 500_000, () =>
  evaluate('steps.agg.outputs.parts[LOOP_INDEX % 3]', vars),
);
result.interpolate_per_s = opsPerSecond('interpolate s3://b/${dateint}/${country}/${item}', 500_000, () =>
  interpolate('s3://bucket/views/${dateint}/${lower(country)}/${item}', vars),
);
result.eval_date_utc_per_s = opsPerSecond('tsToDateInt(RUN_TS)', 200_000, () =>
  evaluate('tsToDateInt(RUN_TS)', vars),
);
result.eval_date_tz_per_s = opsPerSecond('dateIntToTs(dateint, "America/Los_Angeles")', 50_000, () =>
  evaluate('dateIntToTs(dateint, "America/Los_Angeles")', vars),
);
console.log('cold paths');
result.parse_cold_per_s = opsPerSecond('parse a distinct 60-char expression', 50_000, (i) =>
  parseExpression(`dateIntAdd(tsToDateInt(RUN_TS), -${i}) + len(split(country, ","))`),
);
const params = [
  { name: 'dateint', type: 'long' as const, expression: 'tsToDateInt(RUN_TS)' },
  { name: 'yesterday', type: 'long' as const, expression: 'dateIntAdd(dateint, -1)' },
  { name: 'country', type: 'string' as const, value: 'US' },
  { name: 'path', type: 'string' as const, value: 's3://views/${yesterday}/${country}' },
];
result.resolve_4_params_per_s = opsPerSecond('resolveParameters (4 params, 2 expressions)', 50_000, () =>
  resolveParameters(params, { builtins: vars }),
);
console.log('bounded failure');
const t = performance.now();
try {
  evaluate('range(1e9)', {});
} catch {}
result.range_1e9_fails_in_ms = Math.round((performance.now() - t) * 1000) / 1000;
console.log(`  range(1e9) rejected in ${result.range_1e9_fails_in_ms} ms`);
console.log(JSON.stringify(result));
