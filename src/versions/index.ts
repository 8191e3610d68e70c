// Workflow versions: every change of a Workflow's spec content makes a new immutable
// WorkflowVersion `<workflow>-v<N>`; runs pin a version; `activeVersion` rolls back. Pure
// decisions: the caller (controller) reads and writes the store.
import type { Workflow, WorkflowVersion } from '../crds/index.ts';
import { API_VERSION } from '../crds/index.ts';
import { specHash, versionedSpec } from './canonical.ts';

export { canonicalJson, specHash, versionedSpec } from './canonical.ts';

/** Labels put on every version so that a workflow's versions can be listed by selector. */
export const WORKFLOW_LABEL = 'meson.dev/workflow';
export const VERSION_LABEL = 'meson.dev/version';

/** WORKFLOW_NOT_FOUND: a run names a Workflow its namespace does not hold. */
export type VersionErrorCode =
  | 'VERSION_NOT_FOUND'
  | 'VERSION_NONE'
  | 'VERSION_INVALID'
  | 'WORKFLOW_NOT_FOUND';

export class VersionError extends Error {
  override name = 'VersionError';
  code: VersionErrorCode;
  constructor(code: VersionErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function versionName(workflow: string, version: number): string {
  return `${workflow}-v${version}`;
}

/** The versions of `workflow` (by spec.workflow, same namespace), newest first. */
export function versionsOf(workflow: Workflow, versions: readonly WorkflowVersion[]): WorkflowVersion[] {
  const name = workflow.metadata.name;
  const ns = workflow.metadata.namespace;
  return versions
    .filter(
      (v) =>
        v.spec.workflow === name &&
        (ns === undefined || v.metadata.namespace === undefined || v.metadata.namespace === ns),
    )
    .sort((a, b) => b.spec.version - a.spec.version);
}

/**
 * Decides whether saving `workflow` makes a new version. None when the content hash equals the
 * latest version's (an update that changed only annotations, labels or `activeVersion` makes
 * none); otherwise version N+1 with a frozen copy of the spec and the Workflow's annotations.
 * A spec reverted to an older content gets a new number too (versions only move forward).
 */
export function nextVersion(
  workflow: Workflow,
  existingVersions: readonly WorkflowVersion[],
): { create: WorkflowVersion | null; hash: string; latest: number } {
  const name = workflow.metadata.name;
  if (!name)
    throw new VersionError('VERSION_INVALID', 'metadata.name: a Workflow needs a name to be versioned');
  const hash = specHash(workflow.spec);
  const mine = versionsOf(workflow, existingVersions);
  const latest = mine[0];
  if (latest && latest.spec.specHash === hash) return { create: null, hash, latest: latest.spec.version };
  const version = (latest?.spec.version ?? 0) + 1;
  const metadata: WorkflowVersion['metadata'] = {
    name: versionName(name, version),
    labels: { [WORKFLOW_LABEL]: name, [VERSION_LABEL]: String(version) },
  };
  if (workflow.metadata.namespace) metadata.namespace = workflow.metadata.namespace;
  if (workflow.metadata.annotations) metadata.annotations = { ...workflow.metadata.annotations };
  // A frozen copy: nothing in the version shares structure with the (mutable) Workflow.
  const frozen = structuredClone(versionedSpec(workflow.spec));
  const create: WorkflowVersion = {
    apiVersion: API_VERSION,
    kind: 'WorkflowVersion',
    metadata,
    spec: { ...frozen, workflow: name, version, specHash: hash },
  };
  return { create, hash, latest: version };
}

/**
 * The version a new run of `workflow` uses: the one the run asks for, else the Workflow's
 * `activeVersion` pin (rollback), else the latest. Throws VersionError (VERSION_NOT_FOUND,
 * VERSION_NONE) naming the field.
 */
export function resolveRunVersion(
  workflow: Workflow,
  versions: readonly WorkflowVersion[],
  requested?: number,
): WorkflowVersion {
  const mine = versionsOf(workflow, versions);
  const name = workflow.metadata.name;
  const pick = (n: number, field: string): WorkflowVersion => {
    const v = mine.find((x) => x.spec.version === n);
    if (!v) {
      const have = mine.map((x) => x.spec.version).sort((a, b) => a - b);
      throw new VersionError(
        'VERSION_NOT_FOUND',
        `${field}: workflow "${name}" has no version ${n} (versions: ${have.length ? have.join(', ') : 'none'})`,
      );
    }
    return v;
  };
  if (requested !== undefined) return pick(requested, 'spec.version');
  if (workflow.spec.activeVersion !== undefined)
    return pick(workflow.spec.activeVersion, 'spec.activeVersion');
  const latest = mine[0];
  if (!latest) throw new VersionError('VERSION_NONE', `workflow "${name}" has no version yet`);
  return latest;
}

/** The version fields of a Workflow's status. */
export function versionStatus(
  workflow: Workflow,
  versions: readonly WorkflowVersion[],
): { latestVersion?: number; activeVersion?: number; specHash?: string } {
  const mine = versionsOf(workflow, versions);
  const latest = mine[0];
  if (!latest) return {};
  return {
    latestVersion: latest.spec.version,
    activeVersion: workflow.spec.activeVersion ?? latest.spec.version,
    specHash: latest.spec.specHash,
  };
}
