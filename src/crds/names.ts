// Names and system-owned fields, the one place their rules live: the validator (manifests,
// `mesonctl run`, the operator's admission) and the REST API (path parameters and bodies) all
// check them here. Names end up in store keys and directory names (namespace/run/step under the
// data dir), so a name that is not a Kubernetes name must never get past an entry point.
import { issue, type PathSegment, type ValidationIssue } from './messages.ts';

/** RFC 1123 label (Kubernetes namespaces): at most 63 characters. */
export const DNS1123_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
export const DNS1123_LABEL_MAX = 63;
/** RFC 1123 subdomain (Kubernetes object names): dot-separated labels, at most 253 characters. */
export const DNS1123_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const DNS1123_SUBDOMAIN_MAX = 253;
/** The store appends 5 characters to a generateName. */
export const GENERATE_NAME_SUFFIX_LENGTH = 5;
/**
 * A step instance id: a step name with loop/foreach indices, dot-joined for nested runs
 * (`agg[3]`, `outer[2].inner[0]`). Every segment starts with a letter or `_`, so `.` and `..`
 * can never be an id.
 */
export const STEP_INSTANCE_ID_PATTERN =
  '^[A-Za-z_][A-Za-z0-9_-]{0,62}(\\[[0-9]{1,9}\\])*(\\.[A-Za-z_][A-Za-z0-9_-]{0,62}(\\[[0-9]{1,9}\\])*)*$';
export const STEP_INSTANCE_ID_MAX = 1024;

export type NameKind = 'namespace' | 'name' | 'generateName' | 'stepInstance';

const LABEL = new RegExp(DNS1123_LABEL_PATTERN);
const SUBDOMAIN = new RegExp(DNS1123_SUBDOMAIN_PATTERN);
const INSTANCE = new RegExp(STEP_INSTANCE_ID_PATTERN);

/** What each kind of name expects, in the words of an error message. */
export const NAME_EXPECTED: Record<NameKind, string> = {
  namespace: `a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit, at most ${DNS1123_LABEL_MAX} characters)`,
  name: `a lower-case DNS name (DNS-1123 subdomain: a-z, 0-9, '-' and '.', starting and ending with a letter or digit, at most ${DNS1123_SUBDOMAIN_MAX} characters)`,
  generateName: `a prefix of a lower-case DNS name (a-z, 0-9, '-' and '.', starting with a letter or digit, at most ${DNS1123_SUBDOMAIN_MAX - GENERATE_NAME_SUFFIX_LENGTH} characters)`,
  stepInstance: `a step instance id such as agg or agg[3] or outer[2].inner[0] (at most ${STEP_INSTANCE_ID_MAX} characters)`,
};

/** Whether `value` is a valid name of this kind. */
export function isValidName(kind: NameKind, value: unknown): value is string {
  if (typeof value !== 'string') return false;
  switch (kind) {
    case 'namespace':
      return value.length <= DNS1123_LABEL_MAX && LABEL.test(value);
    case 'name':
      return value.length <= DNS1123_SUBDOMAIN_MAX && SUBDOMAIN.test(value);
    case 'generateName': {
      // Kubernetes' rule: the prefix plus a random suffix must be a valid name
      if (value.length === 0 || value.length > DNS1123_SUBDOMAIN_MAX - GENERATE_NAME_SUFFIX_LENGTH)
        return false;
      return SUBDOMAIN.test(`${value}x`);
    }
    case 'stepInstance':
      return value.length <= STEP_INSTANCE_ID_MAX && INSTANCE.test(value);
  }
}

/** The problem with `value` as a name of this kind, or undefined when it is valid. */
export function nameProblem(kind: NameKind, value: unknown): string | undefined {
  if (isValidName(kind, value)) return undefined;
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : typeof value;
  return `expected ${NAME_EXPECTED[kind]}, found ${shown}${typeof value === 'string' && value.length > 100 ? '...' : ''}`;
}

export function nameIssue(path: PathSegment[], kind: NameKind, value: unknown): ValidationIssue[] {
  const problem = nameProblem(kind, value);
  return problem ? [issue(path, 'NAME_INVALID', problem)] : [];
}

// --- labels and annotations -------------------------------------------------------------------

/**
 * Label and annotation keys under these prefixes belong to the system (the controller, triggers,
 * backfills): `meson.dev/workflow`, `meson.dev/backfill`, `meson.dev/priority`... A user-written
 * object that sets one is refused, so nobody can pose as a backfill, a trigger or a child run.
 */
export const SYSTEM_KEY_DOMAIN = 'meson.dev';

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Whether a label or annotation key is owned by the system (meson.dev/..., x.meson.dev/...). */
export function isSystemKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash < 0) return false;
  const prefix = key.slice(0, slash).toLowerCase();
  return prefix === SYSTEM_KEY_DOMAIN || prefix.endsWith(`.${SYSTEM_KEY_DOMAIN}`);
}

/** The problem with a label or annotation key (Kubernetes' qualified-name rule), or undefined. */
function keyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && !isValidName('name', prefix))
    return `key ${JSON.stringify(key)}: the prefix must be ${NAME_EXPECTED.name}`;
  if (name.length > 63 || !QUALIFIED_NAME.test(name))
    return `key ${JSON.stringify(key)}: expected an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  return undefined;
}

/**
 * Checks labels or annotations written by a user: key syntax, label values (at most 63
 * characters), and no system-owned key (see SYSTEM_KEY_DOMAIN).
 */
export function userMetadataMapIssues(
  map: unknown,
  path: PathSegment[],
  what: 'labels' | 'annotations',
): ValidationIssue[] {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) return [];
  const out: ValidationIssue[] = [];
  for (const [k, v] of Object.entries(map)) {
    if (isSystemKey(k)) {
      out.push(
        issue(
          [...path, k],
          'SYSTEM_FIELD',
          `${what} under ${SYSTEM_KEY_DOMAIN}/ are set by the system, not by clients: remove ${JSON.stringify(k)}`,
        ),
      );
      continue;
    }
    const problem = keyProblem(k);
    if (problem) out.push(issue([...path, k], 'NAME_INVALID', problem));
    else if (what === 'labels' && typeof v === 'string' && (v.length > 63 || !LABEL_VALUE.test(v)))
      out.push(
        issue(
          [...path, k],
          'NAME_INVALID',
          `label value ${JSON.stringify(v.slice(0, 100))}: expected at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit`,
        ),
      );
  }
  return out;
}

// --- system-owned spec fields ------------------------------------------------------------------

/** Initiators a client may claim; the others (cron, artifact, subworkflow, backfill, restart) are the system's. */
export const CLIENT_INITIATOR_TYPES = ['api', 'manual'] as const;

/** Initiator fields that describe a trigger (TRIGGER in expressions): a client may not claim them. */
const SYSTEM_TRIGGER_FIELDS = ['scheduledTime', 'date', 'artifacts'] as const;

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A client-written initiator: api or manual only. A `subworkflow` run skips maxActiveRuns and
 * reports its outputs to a parent; cron, artifact, backfill and restart runs are the system's.
 */
export function clientInitiatorIssues(initiator: unknown, path: PathSegment[]): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  if (!isObj(initiator)) return out;
  const type = initiator.type;
  if (typeof type === 'string' && !(CLIENT_INITIATOR_TYPES as readonly string[]).includes(type))
    out.push(
      issue(
        [...path, 'type'],
        'SYSTEM_FIELD',
        `a client may start a run as ${CLIENT_INITIATOR_TYPES.join(' or ')}, not as ${JSON.stringify(type)}: only the system starts ${type} runs`,
      ),
    );
  if (initiator.parent !== undefined)
    out.push(
      issue(
        [...path, 'parent'],
        'SYSTEM_FIELD',
        'only the controller starts a run with a parent (for a subworkflow step): remove initiator.parent',
      ),
    );
  for (const field of SYSTEM_TRIGGER_FIELDS)
    if (initiator[field] !== undefined)
      out.push(
        issue(
          [...path, field],
          'SYSTEM_FIELD',
          `initiator.${field} records what triggered a run and is set by the system only: remove it (pass a parameter instead)`,
        ),
      );
  return out;
}

/**
 * The system-owned fields of a WorkflowRun a client writes: the initiator (see
 * clientInitiatorIssues) and meson.dev/ labels or annotations (backfill membership, priority,
 * trigger, parent-run).
 */
export function clientRunIssues(metadata: unknown, spec: unknown): ValidationIssue[] {
  const out: ValidationIssue[] = [];
  if (isObj(metadata)) {
    out.push(...userMetadataMapIssues(metadata.labels, ['metadata', 'labels'], 'labels'));
    out.push(...userMetadataMapIssues(metadata.annotations, ['metadata', 'annotations'], 'annotations'));
  }
  if (isObj(spec)) out.push(...clientInitiatorIssues(spec.initiator, ['spec', 'initiator']));
  return out;
}
