import { describe, expect, it } from 'vitest';
import type { Workflow, WorkflowVersion } from '../crds/index.ts';
import { nextVersion } from '../versions/index.ts';
import { type AdmissionLookup, type AdmissionRequest, admit, MAX_LISTED_ISSUES } from './admission.ts';

const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);

const workflow: Workflow = {
  apiVersion: 'meson.dev/v1alpha1',
  kind: 'Workflow',
  metadata: { name: 'hello', namespace: 'team' },
  spec: {
    parameters: [
      { name: 'who', type: 'string', value: 'world' },
      { name: 'n', type: 'long', value: 1 },
    ],
    definition: { step: { name: 'greet', shell: { script: 'echo ${who}' } } },
  },
};

function lookupOf(
  workflows: Workflow[],
  versions: WorkflowVersion[] = [],
): AdmissionLookup & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async getWorkflow(ns, name) {
      calls.push(`get ${ns}/${name}`);
      return workflows.find((w) => w.metadata.namespace === ns && w.metadata.name === name);
    },
    async listVersions(ns, wf) {
      calls.push(`list ${ns}/${wf}`);
      return versions.filter((v) => v.metadata.namespace === ns && v.spec.workflow === wf);
    },
  };
}

function request(object: unknown, extra: Partial<AdmissionRequest> = {}): AdmissionRequest {
  const kind = (object as { kind?: string } | null)?.kind ?? 'Workflow';
  return {
    uid: 'u-1',
    kind: { group: 'meson.dev', version: 'v1alpha1', kind },
    operation: 'CREATE',
    namespace: 'team',
    object,
    ...extra,
  };
}

const run = (spec: object) => ({
  apiVersion: 'meson.dev/v1alpha1',
  kind: 'WorkflowRun',
  metadata: { generateName: 'hello-', namespace: 'team' },
  spec: { workflow: 'hello', ...spec },
});

describe('admit', () => {
  it('allows a valid Workflow, also with server-written metadata and a status', async () => {
    const object = {
      ...workflow,
      metadata: {
        ...workflow.metadata,
        uid: 'abc',
        resourceVersion: '12',
        generation: 3,
        creationTimestamp: '2026-01-01T00:00:00Z',
        managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
      },
      status: { anything: 'the controller wrote' },
    };
    expect(await admit(request(object), lookupOf([]), NOW)).toEqual({ uid: 'u-1', allowed: true });
  });

  it('refuses an invalid Workflow with the validator’s path and expectation, as a 422 with causes', async () => {
    const bad = structuredClone(workflow) as unknown as { spec: { definition: unknown } };
    bad.spec.definition = { sequence: [{ step: { name: 'a', shel: { script: 'x' } } }] };
    const res = await admit(request(bad), lookupOf([]), NOW);
    expect(res.allowed).toBe(false);
    expect(res.status?.code).toBe(422);
    expect(res.status?.reason).toBe('Invalid');
    expect(res.status?.message).toMatch(/^spec\.definition\.sequence\[0\]\.step/);
    expect(res.status?.message).toContain('shel');
    expect(res.status?.details?.causes[0]?.field).toMatch(/^spec\.definition\.sequence\[0\]\.step/);
  });

  it('refuses a spark step that sets what the operator owns, when the policy says the operator owns Spark', async () => {
    const spark = structuredClone(workflow) as unknown as { spec: { definition: unknown } };
    spark.spec.definition = {
      step: {
        name: 'agg',
        spark: {
          mainApplication: 'local:///app.py',
          conf: { 'spark.kubernetes.authenticate.driver.serviceAccountName': 'x' },
        },
      },
    };
    expect((await admit(request(spark), lookupOf([]), NOW)).allowed).toBe(true);
    const res = await admit(request(spark), lookupOf([]), NOW, { spark: {} });
    expect(res.allowed).toBe(false);
    expect(res.status?.details?.causes[0]).toMatchObject({
      field: 'spec.definition.step.spark.conf["spark.kubernetes.authenticate.driver.serviceAccountName"]',
      reason: 'STEP_SPARK_OWNED',
    });
  });

  it('refuses wrong shapes in other fields and kinds: expression, parameter type, artifact', async () => {
    const badExpr = structuredClone(workflow);
    badExpr.spec.parameters![0] = { name: 'who', type: 'string', expression: 'nosuchfn(' };
    const r1 = await admit(request(badExpr), lookupOf([]), NOW);
    expect(r1.status?.message).toMatch(/^spec\.parameters\[0\]\.expression: /);
    const artifact = {
      apiVersion: 'meson.dev/v1alpha1',
      kind: 'DataArtifact',
      metadata: { name: 'views', namespace: 'team' },
      spec: { name: 'views', partition: { country: { nested: 'no' } } },
    };
    const r2 = await admit(request(artifact), lookupOf([]), NOW);
    expect(r2.allowed).toBe(false);
    expect(r2.status?.message).toMatch(/^spec\.partition/);
    const noName = { ...workflow, metadata: { namespace: 'team', generateName: 'x-' } };
    expect((await admit(request(noName), lookupOf([]), NOW)).status?.message).toMatch(
      /metadata\.name: a Workflow needs a fixed name/,
    );
  });

  it('lists at most MAX_LISTED_ISSUES problems and counts the rest', async () => {
    const bad = structuredClone(workflow) as unknown as { spec: { definition: unknown } };
    bad.spec.definition = {
      sequence: Array.from({ length: 60 }, (_, i) => ({ step: { name: `s${i}`, bogus: i } })),
    };
    const res = await admit(request(bad), lookupOf([]), NOW);
    expect(res.status?.details?.causes).toHaveLength(MAX_LISTED_ISSUES);
    expect(res.status?.message).toMatch(/and \d+ more problems$/);
  });

  it('refuses a run with an undeclared parameter, naming what the Workflow declares', async () => {
    const res = await admit(
      request(run({ parameters: [{ name: 'whom', value: 'x' }] })),
      lookupOf([workflow]),
      NOW,
    );
    expect(res.allowed).toBe(false);
    expect(res.status?.message).toBe(
      'spec.parameters.whom: unknown parameter "whom": workflow "hello" version 1 declares n, who',
    );
  });

  it('refuses a run whose parameter value does not fit the declared type', async () => {
    const res = await admit(
      request(run({ parameters: [{ name: 'n', value: 'many' }] })),
      lookupOf([workflow]),
      NOW,
    );
    expect(res.allowed).toBe(false);
    expect(res.status?.message).toMatch(/^spec\.parameters\.n: /);
  });

  it('allows a run with declared parameters', async () => {
    const ok = await admit(
      request(
        run({
          parameters: [
            { name: 'who', value: 'you' },
            { name: 'n', value: 3 },
          ],
        }),
      ),
      lookupOf([workflow]),
      NOW,
    );
    expect(ok).toEqual({ uid: 'u-1', allowed: true });
  });

  it('checks a run against the active version, not the Workflow’s newer spec', async () => {
    const v1 = nextVersion(workflow, []).create!;
    const changed = structuredClone(workflow);
    changed.spec.parameters!.push({ name: 'added', type: 'string', value: 'later' });
    const v2 = nextVersion(changed, [v1]).create!;
    const pinned = { ...changed, spec: { ...changed.spec, activeVersion: 1 } };
    const res = await admit(
      request(run({ parameters: [{ name: 'added', value: 'x' }] })),
      lookupOf([pinned], [v1, v2]),
      NOW,
    );
    expect(res.status?.message).toMatch(
      /unknown parameter "added": workflow "hello" version 1 declares n, who/,
    );
    const unpinned = await admit(
      request(run({ parameters: [{ name: 'added', value: 'x' }] })),
      lookupOf([changed], [v1, v2]),
      NOW,
    );
    expect(unpinned.allowed).toBe(true);
    const missing = await admit(request(run({ version: 9 })), lookupOf([changed], [v1, v2]), NOW);
    expect(missing.status?.message).toBe('spec.version: workflow "hello" has no version 9 (versions: 1, 2)');
  });

  it('refuses a run of a Workflow that does not exist (like the REST API’s 404)', async () => {
    const res = await admit(request(run({})), lookupOf([]), NOW);
    expect(res.allowed).toBe(false);
    expect(res.status?.message).toBe(
      'spec.workflow: workflow "team/hello" not found (create the Workflow before its runs)',
    );
  });

  it('refuses (500, retry) when the Workflow cannot be read, and never throws', async () => {
    const broken: AdmissionLookup = {
      getWorkflow: async () => {
        throw new Error('connection refused');
      },
      listVersions: async () => [],
    };
    const res = await admit(request(run({})), broken, NOW);
    expect(res.allowed).toBe(false);
    expect(res.status?.code).toBe(500);
    expect(res.status?.message).toMatch(/could not read Workflow "team\/hello".*connection refused/);
  });

  it('does not look up parameters of a restart (checked against the restarted run when it starts)', async () => {
    const res = await admit(
      request(
        run({
          restartOf: { run: 'hello-abc', from: 'failed' },
          parameters: [{ name: 'whatever', value: 1 }],
        }),
      ),
      lookupOf([workflow]),
      NOW,
    );
    expect(res.allowed).toBe(true);
  });

  it('never refuses deletes, status writes, spec-preserving updates or objects being deleted', async () => {
    const bad = { ...workflow, spec: { definition: { nonsense: true } } };
    const lookup = lookupOf([]);
    const cases: Partial<AdmissionRequest>[] = [
      { operation: 'DELETE' },
      { operation: 'UPDATE', subResource: 'status' },
      { operation: 'UPDATE', oldObject: { ...bad, metadata: { ...bad.metadata, labels: { a: 'b' } } } },
      {
        operation: 'UPDATE',
        object: {
          ...bad,
          spec: { definition: { other: 1 } },
          metadata: { ...bad.metadata, deletionTimestamp: 'x' },
        },
        oldObject: bad,
      },
    ];
    for (const c of cases)
      expect((await admit(request(bad, c), lookup, NOW)).allowed, JSON.stringify(c)).toBe(true);
    // but an update that changes the spec to an invalid one is refused
    const changed = await admit(request(bad, { operation: 'UPDATE', oldObject: workflow }), lookup, NOW);
    expect(changed.allowed).toBe(false);
    // an update of a run's labels does not re-check its parameters against a newer version
    const r = run({ parameters: [{ name: 'gone', value: 1 }] });
    const relabel = await admit(request(r, { operation: 'UPDATE', oldObject: r }), lookup, NOW);
    expect(relabel.allowed).toBe(true);
    expect(lookup.calls).toEqual([]);
  });

  it('leaves other groups and kinds alone', async () => {
    const res = await admit(
      {
        uid: 'x',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        object: { nonsense: 1 },
      },
      lookupOf([]),
      NOW,
    );
    expect(res.allowed).toBe(true);
  });

  it('refuses hostile objects with a message, not a crash: not an object, too deep, huge strings', async () => {
    const lookup = lookupOf([]);
    for (const object of [null, 'a string', 42, [1, 2], undefined]) {
      const res = await admit(
        request(object, { kind: { group: 'meson.dev', version: 'v1alpha1', kind: 'Workflow' } }),
        lookup,
        NOW,
      );
      expect(res.allowed, JSON.stringify(object)).toBe(false);
      expect(res.status?.message).toMatch(/expected a Kubernetes object/);
    }
    let deep: unknown = { step: { name: 'x', noop: {} } };
    for (let i = 0; i < 5_000; i++) deep = { sequence: [deep] };
    const res = await admit(request({ ...workflow, spec: { definition: deep } }), lookup, NOW);
    expect(res.status?.message).toMatch(/levels of nesting/);
    const longName = 'x'.repeat(100_000);
    const huge = await admit(request({ ...workflow, metadata: { name: longName } }), lookup, NOW);
    expect(huge.allowed).toBe(false);
    // one problem's text is cut; the whole refusal stays small
    expect(huge.status!.message.length).toBeLessThan(MAX_LISTED_ISSUES * 600);
  });
});

describe('system-owned run fields', () => {
  const OPERATOR = 'system:serviceaccount:meson-system:meson-operator';
  const policy = { systemUsers: [OPERATOR] };
  const as = (username: string, object: unknown, extra: Partial<AdmissionRequest> = {}) =>
    request(object, { userInfo: { username }, ...extra });
  const lookup = () => lookupOf([workflow]);

  it('refuses a user who claims a system initiator, trigger fields or a parent, in several forms', async () => {
    for (const initiator of [
      { type: 'cron' },
      { type: 'cron', scheduledTime: '2026-01-01T00:00:00Z' },
      { type: 'schedule', scheduledTime: '2026-01-01T00:00:00Z' },
      { type: 'artifact', artifacts: [{ name: 'x', partition: { d: '1' } }] },
      { type: 'backfill', date: 20260101 },
      { type: 'subworkflow', parent: { run: 'p', step: 's' } },
      { type: 'manual', scheduledTime: '2026-01-01T00:00:00Z' },
      { type: 'api', parent: { run: 'p', step: 's' } },
      { type: 'restart' }, // restart without restartOf
    ]) {
      const res = await admit(as('alice', run({ initiator })), lookup(), NOW, policy);
      expect(res.allowed, JSON.stringify(initiator)).toBe(false);
      // 422 when the shape itself is wrong, 403 when it is valid but only the system may write it
      expect([403, 422]).toContain(res.status?.code);
      expect(res.status?.message).toMatch(/spec\.initiator/);
    }
  });

  it('answers 403 Forbidden, naming the field, for a well-formed cron run from a user', async () => {
    const res = await admit(
      as('alice', run({ initiator: { type: 'cron', scheduledTime: '2026-01-01T00:00:00Z' } })),
      lookup(),
      NOW,
      policy,
    );
    expect(res.status).toMatchObject({ code: 403, reason: 'Forbidden' });
    expect(res.status?.details?.causes.map((c) => c.field)).toEqual([
      'spec.initiator.type',
      'spec.initiator.scheduledTime',
    ]);
  });

  it('refuses meson.dev/ labels and annotations from a user, except the run’s own workflow label', async () => {
    const labelled = (labels: Record<string, string>, annotations?: Record<string, string>) => ({
      ...run({}),
      metadata: {
        generateName: 'hello-',
        namespace: 'team',
        labels,
        ...(annotations ? { annotations } : {}),
      },
    });
    expect(
      (await admit(as('alice', labelled({ 'meson.dev/workflow': 'hello' })), lookup(), NOW, policy)).allowed,
    ).toBe(true);
    for (const obj of [
      labelled({ 'meson.dev/workflow': 'other' }),
      labelled({ 'meson.dev/backfill': 'bf-1' }),
      labelled({ 'x.meson.dev/anything': 'v' }),
      labelled({}, { 'meson.dev/priority': '100' }),
      labelled({ 'MESON.DEV/backfill': 'bf-1' }),
    ]) {
      const res = await admit(as('alice', obj), lookup(), NOW, policy);
      expect(res.allowed, JSON.stringify(obj.metadata)).toBe(false);
      expect(res.status?.message).toMatch(/metadata\.(labels|annotations)/);
    }
  });

  it('allows users manual, api and restart-with-restartOf runs, and the operator anything valid', async () => {
    for (const spec of [
      { initiator: { type: 'manual' } },
      { initiator: { type: 'api' } },
      {},
      { initiator: { type: 'restart' }, restartOf: { run: 'hello-x', from: 'failed' } },
    ])
      expect((await admit(as('alice', run(spec)), lookup(), NOW, policy)).allowed, JSON.stringify(spec)).toBe(
        true,
      );
    const cron = run({ initiator: { type: 'cron', scheduledTime: '2026-01-01T00:00:00Z' } });
    expect((await admit(as(OPERATOR, cron), lookup(), NOW, policy)).allowed).toBe(true);
    // no policy (not configured): not checked, as before
    expect((await admit(as('alice', cron), lookup(), NOW)).allowed).toBe(true);
  });

  it('lets a user update a run the operator made (stop it) but not rewrite its initiator', async () => {
    const made = run({ initiator: { type: 'cron', scheduledTime: '2026-01-01T00:00:00Z' } });
    const stopped = { ...made, spec: { ...made.spec, stop: true } };
    const update = { operation: 'UPDATE', oldObject: made };
    expect((await admit(as('alice', stopped, update), lookup(), NOW, policy)).allowed).toBe(true);
    const forged = {
      ...made,
      spec: { ...made.spec, initiator: { type: 'cron', scheduledTime: '2020-01-01T00:00:00Z' } },
    };
    expect((await admit(as('alice', forged, update), lookup(), NOW, policy)).allowed).toBe(false);
  });
});
