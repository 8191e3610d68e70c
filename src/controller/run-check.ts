// Checks a run request before the run is created: the version it would run exists and its
// parameter overrides are declared, of the declared types, and resolve together with the
// version's expressions exactly as they will at run start (src/expr resolveParameters). The
// API answers 422 and `mesonctl run` exits 2 on these issues, instead of creating a run that
// fails a moment later.
import type { Workflow, WorkflowRun, WorkflowVersion } from '../crds/index.ts';
import { compilePlan, limitHint, type RunLimits, resolveRunLimits } from '../engine/index.ts';
import { builtinValues, ExprBudget, ExprError, resolveParameters, type Value } from '../expr/index.ts';
import type { Store } from '../store/types.ts';
import { resolveRunVersion, WORKFLOW_LABEL } from '../versions/index.ts';

export interface RunStartIssue {
  /** `version`, or `parameters.<name>`. */
  path: string;
  message: string;
  code: string;
}

export interface RunStartRequest {
  version?: number;
  parameters?: WorkflowRun['spec']['parameters'];
  /** Values every override is layered on (a restart: the resolved parameters of the run it restarts). */
  base?: Record<string, unknown>;
  /** A restart from a step: the step must be one of the version's. */
  fromStep?: string;
}

/** The version a new run of `wf` would run (throws VersionError naming the field). */
export function runVersion(store: Store, wf: Workflow, requested?: number): WorkflowVersion {
  const ns = wf.metadata.namespace ?? 'default';
  const versions = store.list<WorkflowVersion>('WorkflowVersion', ns, {
    labels: { [WORKFLOW_LABEL]: wf.metadata.name ?? '' },
  }).items;
  return resolveRunVersion(wf, versions, requested);
}

/**
 * The version a restart runs: `requested` (a number, or "active": the one a new run of `wf`
 * would take, e.g. the fix just applied), else the restarted run's own. A restart from failed
 * on another version reuses the instances that succeeded, matched by step instance id (step
 * name plus loop/foreach indices), even where the new version changed their definition.
 */
export function restartVersion(
  store: Store,
  wf: Workflow | undefined,
  requested: number | 'active' | undefined,
  previous: number | undefined,
): number | undefined {
  if (requested === 'active') {
    if (!wf) return previous;
    try {
      return runVersion(store, wf).spec.version;
    } catch {
      return previous; // no runnable version: the run-start check reports it
    }
  }
  return requested ?? previous;
}

/**
 * The issues of starting a run of `wf` with `req` at `now` (empty: it will start). Pure apart
 * from reading the Workflow's versions from the store. `limits.exprBudget` bounds the
 * evaluation of the parameters together, as the engine does at run start.
 */
export function checkRunStart(
  store: Store,
  wf: Workflow,
  req: RunStartRequest,
  now: number,
  limits?: Partial<RunLimits>,
): RunStartIssue[] {
  const ns = wf.metadata.namespace ?? 'default';
  const versions = store.list<WorkflowVersion>('WorkflowVersion', ns, {
    labels: { [WORKFLOW_LABEL]: wf.metadata.name ?? '' },
  }).items;
  return checkRunStartWith(wf, versions, req, now, limits);
}

/**
 * checkRunStart on versions already read (the admission webhook reads them from the API
 * server). Pure.
 */
export function checkRunStartWith(
  wf: Workflow,
  versions: readonly WorkflowVersion[],
  req: RunStartRequest,
  now: number,
  limits?: Partial<RunLimits>,
): RunStartIssue[] {
  const name = wf.metadata.name ?? '';
  let version: WorkflowVersion;
  try {
    version = resolveRunVersion(wf, versions, req.version);
  } catch (err) {
    return [{ path: 'version', message: (err as Error).message, code: 'VERSION_NOT_FOUND' }];
  }
  if (req.fromStep !== undefined && !definitionHasStep(version.spec.definition, req.fromStep)) {
    return [
      {
        path: 'step',
        message: `no step named "${req.fromStep}" in workflow "${name}" version ${version.spec.version}`,
        code: 'STEP_NOT_FOUND',
      },
    ];
  }
  const declared = version.spec.parameters ?? [];
  const known = new Set(declared.map((p) => p.name));
  const issues = overrideIssues(name, version, req.parameters);
  if (issues.length > 0) return issues;
  const overrides: Record<string, Value> = {};
  for (const [k, v] of Object.entries(req.base ?? {})) if (known.has(k)) overrides[k] = v as Value;
  for (const p of req.parameters ?? []) overrides[p.name] = p.value as Value;
  try {
    const builtins = builtinValues({
      runTs: now,
      runId: `${name}-check`,
      workflowId: name,
      workflowVersion: version.spec.version,
    });
    const budget = new ExprBudget(
      resolveRunLimits(limits).exprBudget,
      'the workflow parameters',
      limitHint('exprBudget'),
    );
    resolveParameters(declared, { builtins, overrides, limits: { budget } });
  } catch (err) {
    const e = err as ExprError;
    return [
      {
        path: e instanceof ExprError && e.parameter ? `parameters.${e.parameter}` : 'parameters',
        message: e.message,
        code: e instanceof ExprError ? e.code : 'PARAM_INVALID',
      },
    ];
  }
  return [];
}

function definitionHasStep(definition: WorkflowVersion['spec']['definition'], step: string): boolean {
  try {
    return compilePlan(definition).steps.has(step);
  } catch {
    return false; // a definition that does not compile fails the run with its own message
  }
}

/**
 * Overrides a version does not declare, or gives twice (paths `parameters.<name>`). The run
 * check above, and the controller for runs that reach it without that check (kubectl with no
 * admission webhook).
 */
export function overrideIssues(
  workflow: string,
  version: WorkflowVersion,
  parameters: WorkflowRun['spec']['parameters'],
): RunStartIssue[] {
  const name = workflow;
  const known = new Set((version.spec.parameters ?? []).map((p) => p.name));
  const issues: RunStartIssue[] = [];
  const seen = new Set<string>();
  for (const p of parameters ?? []) {
    if (seen.has(p.name)) {
      issues.push({
        path: `parameters.${p.name}`,
        message: `parameter "${p.name}" is given twice`,
        code: 'PARAM_DUPLICATE',
      });
    }
    seen.add(p.name);
    if (!known.has(p.name)) {
      const list = [...known].sort().join(', ') || 'no parameters';
      issues.push({
        path: `parameters.${p.name}`,
        message: `unknown parameter "${p.name}": workflow "${name}" version ${version.spec.version} declares ${list}`,
        code: 'PARAM_UNKNOWN',
      });
    }
  }
  return issues;
}
