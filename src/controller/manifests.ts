// Loading manifests (YAML files) into a store: Workflows get their version right away, so a
// run can be started immediately after; DataArtifacts are announced; runs are created.
import { readFileSync } from 'node:fs';
import type { DataArtifact, Workflow, WorkflowRun } from '../crds/index.ts';
import { parseManifests, validateManifests } from '../crds/validate.ts';
import type { Store, Stored } from '../store/types.ts';
import { ensureVersion } from './workflows.ts';

export interface ManifestError {
  file: string;
  path: string;
  message: string;
  line?: number;
}

export interface LoadedManifests {
  workflows: Workflow[];
  artifacts: DataArtifact[];
  runs: WorkflowRun[];
  errors: ManifestError[];
}

/** Reads and validates a manifest file. Never throws: unreadable files are errors too. */
export function readManifests(file: string, display = file): LoadedManifests {
  const out: LoadedManifests = { workflows: [], artifacts: [], runs: [], errors: [] };
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    out.errors.push({ file: display, path: '(file)', message: (err as Error).message });
    return out;
  }
  return manifestsFromText(text, display);
}

/** Validates and sorts the manifests of one YAML text (a file, stdin, a synthesised program). */
export function manifestsFromText(text: string, display: string): LoadedManifests {
  const out: LoadedManifests = { workflows: [], artifacts: [], runs: [], errors: [] };
  const checked = validateManifests(text, display);
  for (const i of checked.issues) {
    out.errors.push({ file: display, path: i.path, message: i.message, ...(i.line ? { line: i.line } : {}) });
  }
  if (out.errors.length > 0) return out;
  for (const { doc } of parseManifests(text, display).docs) {
    const kind = (doc as { kind?: string }).kind;
    if (kind === 'Workflow') out.workflows.push(doc as Workflow);
    else if (kind === 'DataArtifact') out.artifacts.push(doc as DataArtifact);
    else if (kind === 'WorkflowRun') out.runs.push(doc as WorkflowRun);
  }
  return out;
}

/** Creates (or updates) the manifests' objects in `namespace` unless they set their own. */
export function applyManifests(
  store: Store,
  m: LoadedManifests,
  now: number,
  namespace = 'default',
): Stored<Workflow>[] {
  return store.transaction((w) => {
    const saved: Stored<Workflow>[] = [];
    for (const wf of m.workflows) {
      const meta = { ...wf.metadata, namespace: wf.metadata.namespace ?? namespace };
      const cur = store.get<Workflow>('Workflow', meta.namespace, meta.name ?? '');
      const obj = cur
        ? w.update<Workflow>('Workflow', { ...wf, metadata: meta })
        : w.create<Workflow>('Workflow', { ...wf, metadata: meta });
      ensureVersion(store, w, obj, now);
      saved.push(obj);
    }
    for (const a of m.artifacts) {
      const meta = { ...a.metadata, namespace: a.metadata.namespace ?? namespace };
      if (meta.name && store.get('DataArtifact', meta.namespace, meta.name)) continue;
      w.create('DataArtifact', {
        ...a,
        metadata: meta,
        status: { announcedAt: new Date(now).toISOString(), ...(a.status ?? {}) },
      });
    }
    for (const r of m.runs) {
      const meta = { ...r.metadata, namespace: r.metadata.namespace ?? namespace };
      if (meta.name && store.get('WorkflowRun', meta.namespace, meta.name)) continue;
      w.create('WorkflowRun', { ...r, metadata: meta, status: undefined });
    }
    return saved;
  });
}
