// Backfill: one run per value of a date parameter over a range, with initiator `backfill`.
// `parallelism` bounds how many of the backfill's runs are active at once (the others wait as
// Pending; see WorkflowServices.admit), `priority` is added to every step's priority so a
// backfill can yield to (or overtake) regular runs in the scheduler queue.
import { createHash } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { BACKFILL_LABEL, BACKFILL_PARALLELISM, RUN_PRIORITY } from '../../controller/annotations.ts';
import { runVersion } from '../../controller/run-check.ts';
import { JsonValueSchema, type Workflow, type WorkflowRun } from '../../crds/index.ts';
import { dateIntAdd } from '../../expr/dates.ts';
import { type RouteDeps, readsAsStore } from '../app.ts';
import { parseWith } from '../http.ts';
import { ApiError } from '../problems.ts';
import { assertRunCanStart, runObject } from './runs.ts';

export const MAX_BACKFILL_RUNS = 1000;

const DateValue = z.union([z.number().int(), z.string().regex(/^\d{8}$|^\d{4}-\d{2}-\d{2}$/)]);

export const BackfillRequestSchema = z.strictObject({
  /** The date parameter to vary (values as dateint 20240131, or ISO dates 2024-01-31). */
  parameter: z.string().min(1),
  from: DateValue,
  /** Inclusive. */
  to: DateValue,
  parallelism: z.number().int().positive().default(1),
  priority: z.number().int().default(0),
  /** Other parameter overrides, the same for every run. */
  parameters: z.record(z.string(), JsonValueSchema).optional(),
});

function toDateInt(v: number | string): number {
  return typeof v === 'number' ? v : Number(v.replace(/-/g, ''));
}

/** The date as the parameter wants it: a number for long/double, else in the format of `like`. */
function format(d: number, like: number | string, type: string | undefined): number | string {
  if (type === 'long' || type === 'double' || typeof like === 'number') return d;
  const s = String(d);
  return like.includes('-') ? `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}` : s;
}

export function backfillRoutes(deps: RouteDeps): FastifyPluginAsync {
  const { store } = deps;
  return async (app) => {
    app.post<{ Params: { ns: string; name: string }; Body: unknown }>(
      '/namespaces/:ns/workflows/:name/backfill',
      async (req, reply) => {
        const ns = req.params.ns;
        const body = parseWith(BackfillRequestSchema, req.body, 'body');
        const wf = store.get<Workflow>('Workflow', ns, req.params.name);
        if (!wf) throw new ApiError('API_NOT_FOUND', `workflow "${ns}/${req.params.name}" not found`);
        let declared: { name: string; type?: string }[];
        try {
          declared = runVersion(readsAsStore(store), wf).spec.parameters ?? [];
        } catch (err) {
          throw new ApiError('API_INVALID', (err as Error).message, { cause: err });
        }
        const target = declared.find((p) => p.name === body.parameter);
        if (!target) {
          const names = declared.map((p) => p.name).join(', ') || 'no parameters';
          throw new ApiError(
            'API_INVALID',
            `parameter: workflow "${req.params.name}" has no parameter "${body.parameter}" (it declares ${names})`,
            {
              issues: [
                {
                  path: 'parameter',
                  message: `unknown parameter "${body.parameter}"`,
                  code: 'PARAM_UNKNOWN',
                },
              ],
            },
          );
        }
        const dateValue = (d: number) => format(d, body.from, target.type);
        const parametersFor = (d: number) => [
          ...Object.entries(body.parameters ?? {})
            .filter(([k]) => k !== body.parameter)
            .map(([name, value]) => ({ name, value })),
          { name: body.parameter, value: dateValue(d) },
        ];
        const from = toDateInt(body.from);
        const to = toDateInt(body.to);
        if (from > to) throw new ApiError('API_BAD_REQUEST', `from (${body.from}) is after to (${body.to})`);
        const dates: number[] = [];
        for (let d = from; d <= to; d = dateIntAdd(d, 1)) {
          dates.push(d);
          if (dates.length > MAX_BACKFILL_RUNS) {
            throw new ApiError('API_BAD_REQUEST', `the range makes more than ${MAX_BACKFILL_RUNS} runs`);
          }
        }
        // every run gets the same parameters but the date: checking the first checks them all
        assertRunCanStart(deps, wf, { parameters: parametersFor(from) });
        const id = createHash('sha256')
          .update(JSON.stringify([ns, req.params.name, body, deps.now()]))
          .digest('hex')
          .slice(0, 10);
        // one commit: SQLite creates all the runs or none; Kubernetes creates them in order and
        // a failure stops there (the runs before it stay, sharing the backfill label)
        const receipts = await store.transaction((w) =>
          dates.map((d) =>
            w.create<WorkflowRun>(
              'WorkflowRun',
              runObject(
                ns,
                req.params.name,
                { parameters: parametersFor(d), initiator: { type: 'backfill', date: d } },
                { [BACKFILL_LABEL]: id },
                { [BACKFILL_PARALLELISM]: String(body.parallelism), [RUN_PRIORITY]: String(body.priority) },
              ),
            ),
          ),
        );
        return reply.code(201).send({
          backfill: id,
          parallelism: body.parallelism,
          priority: body.priority,
          runs: receipts.map((r) => r.value.metadata.name),
        });
      },
    );
  };
}
