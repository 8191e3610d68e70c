// The list pages (workflows, runs, artifacts) and the workflow page with its start-run form.
import { html } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, NS, seg, watch } from './api.js';
import { jsonLines, lineDiff, MAX_EDITS } from './diff.js';
import { Graph } from './run.js';

export function Phase({ phase }) {
  const p = phase ?? 'Pending';
  return html`<span class=${`phase phase-${p}`}>${p}</span>`;
}

export function when(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleString();
}

export function Problem({ error }) {
  return error ? html`<p class="error" role="alert">${error.message}</p>` : null;
}

/** Loads once per change of `deps`; returns [value, error, reload]. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ value: undefined, error: undefined });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (value) => live && setState({ value, error: undefined }),
      (error) => live && setState({ value: undefined, error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return [state.value, state.error, () => setN(n + 1)];
}

/**
 * A form's or button's action: `[act, busy, error]`; `act(...args)` runs `fn(...args)` once at a
 * time and keeps its error to show (a submit event is prevented from reloading the page).
 */
export function useAction(fn) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(undefined);
  const act = async (...args) => {
    args[0]?.preventDefault?.();
    setBusy(true);
    setError(undefined);
    try {
      await fn(...args);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return [act, busy, error];
}

export function WorkflowsPage() {
  const [data, error] = useLoad(() => api(`/namespaces/${NS}/workflows?limit=1000`), []);
  const [q, setQ] = useState('');
  const items = useMemo(() => {
    const all = data?.items ?? [];
    const needle = q.trim().toLowerCase();
    return needle
      ? all.filter((w) => `${w.metadata.name} ${w.spec?.description ?? ''}`.toLowerCase().includes(needle))
      : all;
  }, [data, q]);
  return html`<section>
    <h1>Workflows</h1>
    <${Problem} error=${error} />
    <label class="search">Search <input type="search" value=${q} placeholder="name or description"
      onInput=${(e) => setQ(e.currentTarget.value)} /></label>
    ${data === undefined && !error ? html`<p class="muted">Loading…</p>` : null}
    <div class="scroll"><table>
      <thead><tr><th>Name</th><th>Version (active / latest)</th><th>Schedule</th><th>Last run</th><th>Paused</th></tr></thead>
      <tbody>
      ${items.map((w) => {
        const st = w.status ?? {};
        const cron = w.spec?.triggers?.cron ?? [];
        return html`<tr key=${w.metadata.name}>
          <td><a href=${`#/workflows/${seg(w.metadata.name)}`}>${w.metadata.name}</a>
            ${w.spec?.description ? html`<div class="muted small">${w.spec.description}</div>` : null}</td>
          <td>${st.activeVersion ?? st.latestVersion ?? '–'} / ${st.latestVersion ?? '–'}</td>
          <td>${cron.map((c) => html`<div><code>${c.schedule}</code>${c.timezone ? ` ${c.timezone}` : ''}</div>`)}
            ${st.nextScheduleTime ? html`<div class="muted small">next ${when(st.nextScheduleTime)}</div>` : null}
            ${cron.length === 0 ? html`<span class="muted">–</span>` : null}</td>
          <td>${st.lastRun ? html`<a href=${`#/runs/${seg(st.lastRun)}`}><${Phase} phase=${st.lastRunPhase} /></a>` : html`<span class="muted">never</span>`}</td>
          <td>${w.spec?.paused === true ? 'paused' : 'no'}</td>
        </tr>`;
      })}
      </tbody>
    </table></div>
    ${data && items.length === 0 ? html`<p class="muted">No workflow matches.</p>` : null}
  </section>`;
}

const RUN_PHASES = ['Pending', 'Running', 'Succeeded', 'Failed', 'Stopped'];
const PAGE = 50;

/** Newest first (creation time, then name) within what the server returned. */
export function newestFirst(items) {
  return [...items].sort(
    (a, b) =>
      String(b.metadata.creationTimestamp ?? '').localeCompare(String(a.metadata.creationTimestamp ?? '')) ||
      String(b.metadata.name).localeCompare(String(a.metadata.name)),
  );
}

/** The label that ties a backfill's runs together (set by the server). */
const BACKFILL_LABEL = 'meson.dev/backfill';

/**
 * A page of runs kept current by the runs watch (`GET /runs?watch=true`, resumed from the
 * list's resourceVersion): rows change phase in place; on the first page new runs that match
 * the filters come in at the top.
 */
function useLiveRuns({ phase, workflow, backfill, token }) {
  const [state, setState] = useState({ data: undefined, error: undefined, live: false });
  useEffect(() => {
    let cancelled = false;
    let stop = () => {};
    let timer;
    let rows = [];
    let next;
    const selector = backfill ? `${BACKFILL_LABEL}=${backfill}` : undefined;
    const matches = (r) =>
      (!phase || (r.status?.phase ?? 'Pending') === phase) &&
      (!workflow || r.spec?.workflow === workflow) &&
      (!backfill || r.metadata.labels?.[BACKFILL_LABEL] === backfill);
    const publish = (more = {}) => {
      if (cancelled) return;
      timer ??= setTimeout(() => {
        timer = undefined;
        if (!cancelled) setState((s) => ({ ...s, data: { items: rows, continue: next } }));
      }, 50);
      if (Object.keys(more).length) setState((s) => ({ ...s, ...more }));
    };
    const load = async () => {
      const p = new URLSearchParams({ limit: String(PAGE) });
      if (phase) p.set('phase', phase);
      if (workflow) p.set('workflow', workflow);
      if (selector) p.set('labelSelector', selector);
      if (token) p.set('continue', token);
      const d = await api(`/namespaces/${NS}/runs?${p}`);
      rows = d.items;
      next = d.continue;
      publish({ error: undefined });
      return d;
    };
    load().then(
      (d) => {
        if (cancelled) return;
        const p = new URLSearchParams({ watch: 'true' });
        if (workflow) p.set('workflow', workflow);
        if (selector) p.set('labelSelector', selector);
        stop = watch(`/namespaces/${NS}/runs?${p}`, {
          resourceVersion: d.metadata?.resourceVersion,
          onEvent: (e) => {
            if (!e.object?.metadata?.name || e.type === 'BOOKMARK') return;
            const name = e.object.metadata.name;
            const at = rows.findIndex((r) => r.metadata.name === name);
            if (e.type === 'DELETED' || !matches(e.object)) {
              if (at >= 0) rows = rows.filter((_, i) => i !== at);
            } else if (at >= 0) rows = rows.map((r, i) => (i === at ? e.object : r));
            else if (!token) rows = newestFirst([e.object, ...rows]).slice(0, PAGE);
            else return;
            publish();
          },
          resync: load,
          onLive: (live) => publish({ live }),
          onError: (error) => publish({ error, live: false }),
        });
      },
      (error) => publish({ error }),
    );
    return () => {
      cancelled = true;
      clearTimeout(timer);
      stop();
    };
  }, [phase, workflow, backfill, token]);
  return state;
}

export function RunsPage({ query }) {
  const phase = query.get('phase') ?? '';
  const workflow = query.get('workflow') ?? '';
  const backfill = query.get('backfill') ?? '';
  // continue tokens of the pages before this one (paging back pops)
  const [pages, setPages] = useState(['']);
  useEffect(() => setPages(['']), [phase, workflow, backfill]);
  const token = pages[pages.length - 1];
  const { data, error, live } = useLiveRuns({ phase, workflow, backfill, token });
  const go = (next) => {
    const p = new URLSearchParams();
    if (next.phase) p.set('phase', next.phase);
    if (next.workflow) p.set('workflow', next.workflow);
    if (next.backfill) p.set('backfill', next.backfill);
    location.hash = `#/runs${p.size ? `?${p}` : ''}`;
  };
  const items = newestFirst(data?.items ?? []);
  return html`<section>
    <h1>Runs</h1>
    <div class="filters">
      <label>Phase <select value=${phase} onChange=${(e) => go({ phase: e.currentTarget.value, workflow, backfill })}>
        <option value="">any</option>
        ${RUN_PHASES.map((p) => html`<option value=${p}>${p}</option>`)}
      </select></label>
      <label>Workflow <input type="search" value=${workflow}
        onChange=${(e) => go({ phase, workflow: e.currentTarget.value.trim(), backfill })} /></label>
      ${backfill ? html`<span>Backfill <code>${backfill}</code> <button class="link" onClick=${() => go({ phase, workflow })}>show all runs</button></span>` : null}
      <span class="live-badge small">${live ? 'live' : data ? 'reconnecting…' : ''}</span>
    </div>
    <${Problem} error=${error} />
    <div class="scroll"><table>
      <thead><tr><th>Run</th><th>Workflow</th><th>Phase</th><th>Started</th><th>Duration</th><th>Initiator</th></tr></thead>
      <tbody>
      ${items.map(
        (r) => html`<tr key=${r.metadata.name}>
        <td><a href=${`#/runs/${seg(r.metadata.name)}`}>${r.metadata.name}</a></td>
        <td><a href=${`#/workflows/${seg(r.spec.workflow)}`}>${r.spec.workflow}</a>${r.status?.version ? html` <span class="muted">v${r.status.version}</span>` : null}</td>
        <td><${Phase} phase=${r.status?.phase} /></td>
        <td>${when(r.status?.startTime ?? r.metadata.creationTimestamp)}</td>
        <td>${r.status?.duration ?? ''}</td>
        <td>${r.spec.initiator?.type ?? ''}${r.spec.initiator?.date ? ` ${r.spec.initiator.date}` : ''}${r.spec.restartOf ? html` <span class="muted">(of ${r.spec.restartOf.run})</span>` : null}</td>
      </tr>`,
      )}
      </tbody>
    </table></div>
    ${data && items.length === 0 ? html`<p class="muted">No runs.</p>` : null}
    <div class="pager">
      <button disabled=${pages.length < 2} onClick=${() => setPages(pages.slice(0, -1))}>Newer</button>
      <span class="muted">page ${pages.length}</span>
      <button disabled=${!data?.continue} onClick=${() => setPages([...pages, data.continue])}>Older</button>
    </div>
  </section>`;
}

/** The value a form field holds, typed as the parameter declares (422 from the server otherwise). */
export function typedValue(type, raw) {
  if (type === 'long' || type === 'double') return raw === '' ? undefined : Number(raw);
  if (type === 'boolean') return raw === true || raw === 'true';
  if (type === 'list' || type === 'map') return raw.trim() === '' ? undefined : JSON.parse(raw);
  return raw;
}

/** The form values of declared parameters (lists and maps as JSON text). */
export function paramValues(params) {
  return Object.fromEntries(
    params.map((p) => [
      p.name,
      p.type === 'list' || p.type === 'map'
        ? JSON.stringify(p.value ?? (p.type === 'list' ? [] : {}))
        : (p.value ?? ''),
    ]),
  );
}

/** The form's values that differ from the parameters' own, typed as declared (a bad list or map throws). */
export function changedParams(params, values) {
  const out = {};
  for (const p of params) {
    const v = typedValue(p.type ?? 'string', values[p.name]);
    if (v !== undefined && JSON.stringify(v) !== JSON.stringify(p.value)) out[p.name] = v;
  }
  return out;
}

/** One input per declared parameter, typed as declared. */
export function ParamFields({ params, values, onChange, prefix = 'param-' }) {
  const set = (name, v) => onChange({ ...values, [name]: v });
  return params.map((p) => {
    const id = `${prefix}${p.name}`;
    const type = p.type ?? 'string';
    let input;
    if (type === 'boolean')
      input = html`<input id=${id} type="checkbox" checked=${values[p.name] === true || values[p.name] === 'true'}
        onChange=${(e) => set(p.name, e.currentTarget.checked)} />`;
    else if (type === 'list' || type === 'map')
      input = html`<textarea id=${id} rows="2" onInput=${(e) => set(p.name, e.currentTarget.value)}>${values[p.name]}</textarea>`;
    else
      input = html`<input id=${id} type=${type === 'string' ? 'text' : 'number'} step=${type === 'double' ? 'any' : '1'}
        value=${values[p.name]} onInput=${(e) => set(p.name, e.currentTarget.value)} />`;
    return html`<div class="field" key=${p.name}><label for=${id}>${p.name} <span class="muted">${type}</span></label>${input}</div>`;
  });
}

function StartForm({ wf }) {
  const params = (wf.spec?.parameters ?? []).filter((p) => p.expression === undefined);
  const [values, setValues] = useState(() => paramValues(params));
  const [submit, busy, error] = useAction(async () => {
    const parameters = changedParams(params, values);
    const run = await api(`/namespaces/${NS}/workflows/${seg(wf.metadata.name)}/runs`, {
      method: 'POST',
      body: { parameters, initiator: { type: 'manual' } },
    });
    location.hash = `#/runs/${seg(run.metadata.name)}`;
  });
  return html`<form class="start" onSubmit=${submit}>
    <h2>Start a run</h2>
    <${ParamFields} params=${params} values=${values} onChange=${setValues} />
    ${params.length === 0 ? html`<p class="muted">This workflow takes no parameters.</p>` : null}
    ${
      (wf.spec?.parameters ?? []).some((p) => p.expression !== undefined)
        ? html`<p class="muted small">Computed when the run starts: ${(wf.spec.parameters ?? [])
            .filter((p) => p.expression !== undefined)
            .map((p) => html`<code>${p.name} = ${p.expression}</code> `)}</p>`
        : null
    }
    <${Problem} error=${error} />
    <button type="submit" disabled=${busy}>Start run</button>
  </form>`;
}

/** Two versions side by side as a line diff of their content (keys sorted, JSON). */
function VersionDiff({ name, a, b }) {
  const [data, error] = useLoad(
    () => Promise.all([a, b].map((n) => api(`/namespaces/${NS}/workflows/${seg(name)}/versions/${n}`))),
    [name, a, b],
  );
  const diff = useMemo(() => {
    if (!data) return undefined;
    const content = (v) => {
      const { specHash: _h, version: _v, workflow: _w, ...rest } = v.spec ?? {};
      return jsonLines(rest);
    };
    return lineDiff(content(data[0]), content(data[1]));
  }, [data]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!diff) return html`<p class="muted">Loading…</p>`;
  if (diff.tooDifferent)
    return html`<p class="muted">The versions differ in more than ${MAX_EDITS} lines: compare them with <code>mesonctl</code>.</p>`;
  const changed = diff.lines.filter((l) => l.op !== ' ').length;
  // unchanged stretches are folded to 3 lines of context around each change
  const keep = diff.lines.map((_l, i) =>
    diff.lines.slice(Math.max(0, i - 3), i + 4).some((m) => m.op !== ' '),
  );
  const out = [];
  diff.lines.forEach((l, i) => {
    if (keep[i]) out.push(l);
    else if (keep[i - 1] || i === 0) out.push({ op: '…', text: '' });
  });
  return html`<div class="diff-wrap">
    <p class="small">v${a} → v${b}: ${changed === 0 ? 'same content' : `${diff.lines.filter((l) => l.op === '-').length} lines removed, ${diff.lines.filter((l) => l.op === '+').length} added`}</p>
    <pre class="diff" tabindex="0" aria-label=${`Differences between version ${a} and version ${b}`}>${out.map(
      (l) =>
        l.op === '…'
          ? html`<span class="diff-line diff-fold">⋯</span>`
          : html`<span class=${`diff-line${l.op === '+' ? ' diff-add' : l.op === '-' ? ' diff-del' : ''}`}>${l.op} ${l.text}</span>`,
    )}</pre>
  </div>`;
}

/** Versions, oldest first: compare any two, make one active (spec.activeVersion) or follow the latest. */
function Versions({ wf, onChanged }) {
  const name = wf.metadata.name;
  const [versions, error] = useLoad(
    () => api(`/namespaces/${NS}/workflows/${seg(name)}/versions`),
    [name, wf],
  );
  const items = versions?.items ?? [];
  const numbers = items.map((v) => v.spec?.version).filter((n) => n !== undefined);
  const latest = wf.status?.latestVersion;
  const active = wf.status?.activeVersion ?? latest;
  const pinned = wf.spec?.activeVersion !== undefined;
  const [a, setA] = useState(undefined);
  const [b, setB] = useState(undefined);
  const [shown, setShown] = useState(undefined);
  const left = a ?? numbers[numbers.length - 2] ?? numbers[0];
  const right = b ?? numbers[numbers.length - 1];
  /** spec.activeVersion = n (undefined: follow the latest), with the resourceVersion read. */
  const [pin, busy, actionError] = useAction(async (n) => {
    const { activeVersion: _old, ...spec } = wf.spec ?? {};
    const metadata = {
      name,
      resourceVersion: wf.metadata.resourceVersion,
      ...(wf.metadata.labels ? { labels: wf.metadata.labels } : {}),
      ...(wf.metadata.annotations ? { annotations: wf.metadata.annotations } : {}),
    };
    await api(`/namespaces/${NS}/workflows/${seg(name)}`, {
      method: 'PUT',
      body: { metadata, spec: n === undefined ? spec : { ...spec, activeVersion: n } },
    });
    onChanged();
  });
  return html`<section aria-label="Versions">
    <h2>Versions</h2>
    <${Problem} error=${error} />
    <p class="small">${pinned ? html`Runs use version ${active} (pinned: <code>spec.activeVersion</code>). ` : html`Runs use the latest version. `}
      ${pinned ? html`<button disabled=${busy} onClick=${() => pin(undefined)}>Follow the latest version</button>` : null}</p>
    <div class="scroll"><table>
      <thead><tr><th>Version</th><th>Created</th><th>Runs use it</th><th></th></tr></thead>
      <tbody>${items.map((v) => {
        const n = v.spec?.version;
        return html`<tr key=${v.metadata.name}>
        <td>v${n}${n === latest ? html` <span class="muted">latest</span>` : null}</td><td>${when(v.metadata.creationTimestamp)}</td>
        <td>${n === active ? 'active' : ''}</td>
        <td>${n === active ? null : html`<button disabled=${busy} onClick=${() => pin(n)} aria-label=${`Make version ${n} active`}>Make active</button>`}</td></tr>`;
      })}
      </tbody></table></div>
    <${Problem} error=${actionError} />
    ${
      numbers.length > 1
        ? html`<form class="compare" onSubmit=${(e) => {
            e.preventDefault();
            setShown([left, right]);
          }}>
          <label>Compare <select aria-label="Older version" value=${left} onChange=${(e) => setA(Number(e.currentTarget.value))}>
            ${numbers.map((n) => html`<option value=${n}>v${n}</option>`)}</select></label>
          <label>with <select aria-label="Newer version" value=${right} onChange=${(e) => setB(Number(e.currentTarget.value))}>
            ${numbers.map((n) => html`<option value=${n}>v${n}</option>`)}</select></label>
          <button type="submit">Show differences</button>
        </form>
        ${shown ? html`<${VersionDiff} name=${name} a=${shown[0]} b=${shown[1]} />` : null}`
        : null
    }
  </section>`;
}

/** A backfill: one run per day of a date range for a date parameter (POST …/backfill). */
function BackfillForm({ wf }) {
  const params = (wf.spec?.parameters ?? []).filter((p) => p.expression === undefined);
  const dateLike = params.filter((p) => /date|day/i.test(p.name));
  const [parameter, setParameter] = useState((dateLike[0] ?? params[0])?.name ?? '');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [parallelism, setParallelism] = useState('1');
  const [submit, busy, error] = useAction(async () => {
    const r = await api(`/namespaces/${NS}/workflows/${seg(wf.metadata.name)}/backfill`, {
      method: 'POST',
      body: { parameter, from, to, parallelism: Number(parallelism) },
    });
    location.hash = `#/runs?${new URLSearchParams({ workflow: wf.metadata.name, backfill: r.backfill })}`;
  });
  if (params.length === 0) return null;
  return html`<form class="start" onSubmit=${submit} aria-label="Backfill">
    <h2>Backfill</h2>
    <p class="muted small">One run per day, from and to included (at most 1000).</p>
    <div class="field"><label for="bf-param">Date parameter</label>
      <select id="bf-param" value=${parameter} onChange=${(e) => setParameter(e.currentTarget.value)}>
        ${params.map((p) => html`<option value=${p.name}>${p.name} (${p.type ?? 'string'})</option>`)}</select></div>
    <div class="field"><label for="bf-from">From</label>
      <input id="bf-from" type="date" required value=${from} onInput=${(e) => setFrom(e.currentTarget.value)} /></div>
    <div class="field"><label for="bf-to">To</label>
      <input id="bf-to" type="date" required value=${to} onInput=${(e) => setTo(e.currentTarget.value)} /></div>
    <div class="field"><label for="bf-par">Runs at once</label>
      <input id="bf-par" type="number" min="1" step="1" value=${parallelism} onInput=${(e) => setParallelism(e.currentTarget.value)} /></div>
    <${Problem} error=${error} />
    <button type="submit" disabled=${busy}>Start backfill</button>
  </form>`;
}

export function WorkflowPage({ name }) {
  const [wf, error, reload] = useLoad(() => api(`/namespaces/${NS}/workflows/${seg(name)}`), [name]);
  const [runs] = useLoad(() => api(`/namespaces/${NS}/runs?workflow=${seg(name)}&limit=20`), [name]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!wf) return html`<p class="muted">Loading…</p>`;
  return html`<section>
    <h1>Workflow ${wf.metadata.name}</h1>
    ${wf.spec?.description ? html`<p>${wf.spec.description}</p>` : null}
    <div class="columns">
      <div class="grow"><${Graph} definition=${wf.spec?.definition} /></div>
      <div class="side"><${StartForm} wf=${wf} /><${BackfillForm} wf=${wf} /></div>
    </div>
    <${Versions} wf=${wf} onChanged=${reload} />
    <h2>Recent runs</h2>
    <ul class="plain">${(runs?.items ?? []).map(
      (r) => html`<li key=${r.metadata.name}>
      <a href=${`#/runs/${seg(r.metadata.name)}`}>${r.metadata.name}</a> <${Phase} phase=${r.status?.phase} /></li>`,
    )}</ul>
  </section>`;
}

const partitionText = (p) =>
  Object.entries(p ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

function Producer({ producer: pr }) {
  if (pr?.run)
    return html`<a href=${`#/runs/${seg(pr.run)}`}>${pr.workflow ?? pr.run}${pr.step ? ` / ${pr.step}` : ''}</a>`;
  return pr?.workflow ?? 'announced by a client';
}

export function ArtifactsPage() {
  const [data, error] = useLoad(() => api(`/namespaces/${NS}/artifacts?limit=500`), []);
  return html`<section>
    <h1>Data artifacts</h1>
    <${Problem} error=${error} />
    <div class="scroll"><table>
      <thead><tr><th>Data set</th><th>Partition</th><th>Location</th><th>Producer</th><th>Announced</th></tr></thead>
      <tbody>${(data?.items ?? []).map(
        (a) => html`<tr key=${a.metadata.name}>
          <td><a href=${`#/artifacts/${seg(a.metadata.name)}`} title="Lineage: producer and consumers">${a.spec?.name}</a></td>
          <td>${a.spec?.partition ? html`<code>${partitionText(a.spec.partition)}</code>` : ''}</td>
          <td><code>${a.spec?.location ?? ''}</code></td>
          <td><${Producer} producer=${a.spec?.producer} /></td>
          <td>${when(a.metadata.creationTimestamp)}</td></tr>`,
      )}</tbody></table></div>
    ${data && data.items.length === 0 ? html`<p class="muted">No artifacts announced yet.</p>` : null}
    <p class="muted small">A data set's page shows its lineage: who produced it, the workflows that wait on it and the runs it started.</p>
  </section>`;
}

/** One artifact: its partition and location, producer, and consumers (GET …/consumers, paged). */
export function ArtifactPage({ name }) {
  const [a, error] = useLoad(() => api(`/namespaces/${NS}/artifacts/${seg(name)}`), [name]);
  const [lineage, setLineage] = useState({
    workflows: undefined,
    runs: [],
    next: undefined,
    error: undefined,
  });
  const more = (token) =>
    api(
      `/namespaces/${NS}/artifacts/${seg(name)}/consumers?limit=200${token ? `&continue=${encodeURIComponent(token)}` : ''}`,
    ).then(
      (page) =>
        setLineage((l) => ({
          workflows: page.workflows ?? l.workflows,
          truncated: page.workflowsTruncated ?? l.truncated,
          runs: [...(token ? l.runs : []), ...page.runs],
          next: page.continue,
          error: undefined,
        })),
      (err) => setLineage((l) => ({ ...l, error: err })),
    );
  useEffect(() => {
    more(undefined);
  }, [name]);
  const wfs = lineage.workflows;
  return html`<section aria-labelledby="artifact-title">
    <p><a href="#/artifacts">← Data artifacts</a></p>
    <${Problem} error=${error} />
    ${
      a &&
      html`<h1 id="artifact-title">${a.spec?.name}${a.spec?.partition ? html` <code>${partitionText(a.spec.partition)}</code>` : ''}</h1>
      <dl class="facts">
        <dt>Object</dt><dd><code>${a.metadata.name}</code></dd>
        <dt>Location</dt><dd><code>${a.spec?.location ?? '–'}</code></dd>
        <dt>Producer</dt><dd><${Producer} producer=${a.spec?.producer} /></dd>
        <dt>Announced</dt><dd>${when(a.metadata.creationTimestamp)}</dd>
      </dl>`
    }
    <${Problem} error=${lineage.error} />
    <h2>Consumed by workflows</h2>
    ${
      wfs === undefined
        ? html`<p class="muted">Loading…</p>`
        : wfs.length === 0
          ? html`<p class="muted">No workflow's trigger or step inputs name this artifact.</p>`
          : html`<ul class="plain" aria-label="Consuming workflows">${wfs.map(
              (c) => html`<li key=${`${c.workflow}/${c.via}/${c.step ?? ''}`}>
                <a href=${`#/workflows/${seg(c.workflow)}`}>${c.workflow}</a>
                ${c.via === 'trigger' ? ' — artifact trigger' : ` — inputs of step ${c.step}`}
                ${c.partition ? html` <code>${partitionText(c.partition)}</code>` : ''}</li>`,
            )}</ul>`
    }
    ${lineage.truncated ? html`<p class="muted small">Only the first 500 are listed.</p>` : null}
    <h2>Runs it started</h2>
    ${
      lineage.runs.length === 0 && !lineage.next && wfs !== undefined
        ? html`<p class="muted">No run was started by this artifact (artifact triggers).</p>`
        : html`<ul class="plain" aria-label="Runs it started">${lineage.runs.map(
            (r) => html`<li key=${r.name}><a href=${`#/runs/${seg(r.name)}`}>${r.name}</a>${' '}
              <${Phase} phase=${r.phase} /> <span class="muted small">${r.workflow} · ${when(r.creationTimestamp)}</span></li>`,
          )}</ul>`
    }
    ${lineage.next ? html`<button onClick=${() => more(lineage.next)}>Older runs</button>` : null}
    <p class="muted small">Steps that waited for it show it in their run's step panel (Inputs).</p>
  </section>`;
}
