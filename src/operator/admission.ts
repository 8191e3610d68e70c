// The decisions of the validating admission webhook: an AdmissionReview (admission.k8s.io/v1)
// request in, a response out. The checks are the project's own: validateDocument (the same
// function behind `mesonctl validate`, the REST API and the controller) for every kind, and for
// a new WorkflowRun checkRunStartWith (the REST API's run check) against the Workflow's
// versions. Pure apart from the injected lookup of Workflows and versions.

import type { SparkOwnership } from '../../executors/spark.ts';
import { checkRunStartWith, type RunStartIssue } from '../controller/run-check.ts';
import type { Workflow, WorkflowRun, WorkflowVersion } from '../crds/index.ts';
import { clientRunIssues } from '../crds/names.ts';
import { validateDocument } from '../crds/validate.ts';
import { nextVersion, WORKFLOW_LABEL } from '../versions/index.ts';

/** The kinds the webhook checks (meson.dev/v1alpha1). WorkflowVersions are written by the controller. */
export const ADMITTED_KINDS = ['Workflow', 'WorkflowRun', 'DataArtifact'] as const;

/** At most this many problems are listed in a refusal (the count of the rest is given). */
export const MAX_LISTED_ISSUES = 20;
/** Each listed problem's message is cut to this many characters. */
export const MAX_ISSUE_CHARS = 500;

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  operation: string;
  namespace?: string;
  name?: string;
  subResource?: string;
  object?: unknown;
  oldObject?: unknown;
  /** Who made the request, as the API server authenticated them. */
  userInfo?: { username?: string; groups?: string[] };
}

/**
 * Who may write what only the system writes: a run's initiator (cron, artifact, backfill and
 * subworkflow runs, their trigger fields, a parent) and meson.dev/ labels and annotations.
 * `systemUsers` are the usernames of the operator itself (it creates those runs through the
 * API server, so its own requests come through here too); everybody else is a client, held to
 * what the REST API lets a client write. Undefined: not checked (the operator always sets it to
 * its own identity, from a SelfSubjectReview).
 */
export interface AdmissionPolicy {
  systemUsers?: readonly string[];
  /** The Spark settings the operator owns: a Workflow's spark step may not set them. */
  spark?: SparkOwnership;
}

export interface AdmissionCause {
  field: string;
  message: string;
  reason: string;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: {
    code: number;
    reason: string;
    message: string;
    details?: { causes: AdmissionCause[] };
  };
  warnings?: string[];
}

/** What the webhook reads from the cluster to check a new run (the API server, in the operator). */
export interface AdmissionLookup {
  getWorkflow(namespace: string, name: string): Promise<Workflow | undefined>;
  /** The WorkflowVersions labelled meson.dev/workflow=<workflow> in the namespace. */
  listVersions(namespace: string, workflow: string): Promise<WorkflowVersion[]>;
}

interface Problem {
  path: string;
  message: string;
  code: string;
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function clip(s: string): string {
  return s.length > MAX_ISSUE_CHARS ? `${s.slice(0, MAX_ISSUE_CHARS)}…` : s;
}

/** A refusal with the project's messages: `PATH: message` per problem, as `mesonctl validate` prints. */
export function deny(uid: string, problems: Problem[], code = 422): AdmissionResponse {
  const listed = problems.slice(0, MAX_LISTED_ISSUES);
  const more = problems.length - listed.length;
  const lines = listed.map((p) => `${p.path}: ${clip(p.message)}`);
  if (more > 0) lines.push(`and ${more} more problem${more === 1 ? '' : 's'}`);
  return {
    uid,
    allowed: false,
    status: {
      code,
      reason: code === 422 ? 'Invalid' : code === 403 ? 'Forbidden' : 'InternalError',
      message: lines.join('; '),
      details: {
        causes: listed.map((p) => ({ field: p.path, message: clip(p.message), reason: p.code })),
      },
    },
  };
}

const allow = (uid: string): AdmissionResponse => ({ uid, allowed: true });

/** Deep equality of JSON values (the specs of an update). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * The answer to one admission request. Never throws: a failing lookup refuses with a 500-class
 * message (the API server reports it to the user; failurePolicy does not apply to a refusal).
 */
export async function admit(
  request: AdmissionRequest,
  lookup: AdmissionLookup,
  now: number,
  policy: AdmissionPolicy = {},
): Promise<AdmissionResponse> {
  const { uid, operation } = request;
  const kind = request.kind.kind;
  if (request.kind.group !== 'meson.dev' || !(ADMITTED_KINDS as readonly string[]).includes(kind))
    return allow(uid);
  // Only writes of the object itself are checked: status is the controller's, deletes are free.
  if ((operation !== 'CREATE' && operation !== 'UPDATE') || request.subResource) return allow(uid);
  const object = request.object;
  if (operation === 'UPDATE') {
    // An object on its way out (finalizers being removed) or an update that leaves the spec as
    // it was (labels, annotations, finalizers, owner references) is never refused: objects stored
    // before this webhook existed, or under an older validator, must stay manageable.
    if (isObj(object) && isObj(object.metadata) && object.metadata.deletionTimestamp) return allow(uid);
    if (isObj(object) && isObj(request.oldObject) && sameJson(object.spec, request.oldObject.spec))
      return allow(uid);
  }
  // The status is the controller's (and may hold server-written values the schema does not
  // describe); the controller validates Workflows the same way.
  const doc = isObj(object) ? { ...object, status: undefined } : object;
  const issues = validateDocument(doc, policy.spark ? { spark: policy.spark } : {});
  if (issues.length > 0) return deny(uid, issues);
  if (
    kind === 'WorkflowRun' &&
    policy.systemUsers &&
    !policy.systemUsers.includes(request.userInfo?.username ?? '')
  ) {
    const claimed = clientRunClaims(
      doc as WorkflowRun,
      operation === 'UPDATE' ? (request.oldObject as WorkflowRun) : undefined,
    );
    if (claimed.length > 0) return deny(uid, claimed, 403);
  }
  if (kind === 'WorkflowRun' && operation === 'CREATE')
    return checkNewRun(uid, doc as WorkflowRun, request.namespace ?? '', lookup, now);
  return allow(uid);
}

/**
 * What a client (not the operator) may not write on a run: the REST API's rule
 * (clientRunIssues: api or manual initiators, no parent or trigger fields, no meson.dev/ keys),
 * with what a kubectl user needs on top: `restart` with a `restartOf`, and the
 * `meson.dev/workflow` label naming the run's own workflow. On an update, an initiator or system
 * key the object already had is kept, not refused (the operator wrote it).
 */
function clientRunClaims(run: WorkflowRun, old: WorkflowRun | undefined): Problem[] {
  const spec = run.spec as WorkflowRun['spec'] | undefined;
  const initiator =
    spec?.initiator?.type === 'restart' && spec.restartOf && Object.keys(spec.initiator).length === 1
      ? undefined
      : spec?.initiator;
  const labels = { ...(run.metadata?.labels ?? {}) };
  if (labels[WORKFLOW_LABEL] === spec?.workflow) delete labels[WORKFLOW_LABEL];
  const problems = clientRunIssues({ ...run.metadata, labels }, { ...spec, initiator });
  if (!old) return problems;
  const before = JSON.stringify(old.spec?.initiator ?? null);
  return problems.filter((p) => {
    const [top, map, key] = p.segments ?? [];
    if (top === 'spec') return JSON.stringify(spec?.initiator ?? null) !== before;
    if (top !== 'metadata' || (map !== 'labels' && map !== 'annotations')) return true;
    const at = (o: WorkflowRun) => (o.metadata?.[map] as Record<string, string> | undefined)?.[String(key)];
    return at(old) !== at(run);
  });
}

/**
 * A new run, as the REST API's POST /namespaces/{ns}/runs checks it: the Workflow must exist
 * (refused otherwise, like the API's 404), and unless the run restarts another its version must
 * exist and its parameters be declared, typed and resolvable. A Workflow the controller has not
 * yet versioned is checked against its own spec (the version the controller is about to make).
 */
async function checkNewRun(
  uid: string,
  run: WorkflowRun,
  namespace: string,
  lookup: AdmissionLookup,
  now: number,
): Promise<AdmissionResponse> {
  const workflowName = run.spec.workflow;
  let wf: Workflow | undefined;
  let versions: WorkflowVersion[];
  try {
    wf = await lookup.getWorkflow(namespace, workflowName);
    versions = wf ? await lookup.listVersions(namespace, workflowName) : [];
  } catch (err) {
    return deny(
      uid,
      [
        {
          path: 'spec.workflow',
          code: 'ADMISSION_LOOKUP',
          message: `could not read Workflow "${namespace}/${workflowName}" to check the run (try again): ${(err as Error).message}`,
        },
      ],
      500,
    );
  }
  if (!wf)
    return deny(uid, [
      {
        path: 'spec.workflow',
        code: 'RUN_WORKFLOW_NOT_FOUND',
        message: `workflow "${namespace}/${workflowName}" not found (create the Workflow before its runs)`,
      },
    ]);
  if (run.spec.restartOf) return allow(uid);
  const mine = versions.filter((v) => v.spec?.workflow === workflowName);
  const provisional = mine.length === 0 ? nextVersion(wf, []).create : null;
  const issues: RunStartIssue[] = checkRunStartWith(
    wf,
    provisional ? [provisional] : mine,
    {
      ...(run.spec.version !== undefined ? { version: run.spec.version } : {}),
      ...(run.spec.parameters ? { parameters: run.spec.parameters } : {}),
    },
    now,
  );
  if (issues.length === 0) return allow(uid);
  return deny(
    uid,
    issues.map((i) => {
      const path = `spec.${i.path}`;
      return {
        ...i,
        path,
        message: i.message.startsWith(`${path}: `) ? i.message.slice(path.length + 2) : i.message,
      };
    }),
  );
}
