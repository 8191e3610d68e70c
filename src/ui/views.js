// The list pages (workflows, runs, artifacts) and the workflow page with its start-run form.
import { html } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, NS, seg } from './api.js';
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

export function RunsPage({ query }) {
  const phase = query.get('phase') ?? '';
  const workflow = query.get('workflow') ?? '';
  // continue tokens of the pages before this one (paging back pops)
  const [pages, setPages] = useState(['']);
  useEffect(() => setPages(['']), [phase, workflow]);
  const token = pages[pages.length - 1];
  const [data, error] = useLoad(() => {
    const p = new URLSearchParams({ limit: String(PAGE) });
    if (phase) p.set('phase', phase);
    if (workflow) p.set('workflow', workflow);
    if (token) p.set('continue', token);
    return api(`/namespaces/${NS}/runs?${p}`);
  }, [phase, workflow, token]);
  const go = (next) => {
    const p = new URLSearchParams();
    if (next.phase) p.set('phase', next.phase);
    if (next.workflow) p.set('workflow', next.workflow);
    location.hash = `#/runs${p.size ? `?${p}` : ''}`;
  };
  const items = newestFirst(data?.items ?? []);
  return html`<section>
    <h1>Runs</h1>
    <div class="filters">
      <label>Phase <select value=${phase} onChange=${(e) => go({ phase: e.currentTarget.value, workflow })}>
        <option value="">any</option>
        ${RUN_PHASES.map((p) => html`<option value=${p}>${p}</option>`)}
      </select></label>
      <label>Workflow <input type="search" value=${workflow}
        onChange=${(e) => go({ phase, workflow: e.currentTarget.value.trim() })} /></label>
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
        <td>${r.spec.initiator?.type ?? ''}${r.spec.restartOf ? html` <span class="muted">(of ${r.spec.restartOf.run})</span>` : null}</td>
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

function StartForm({ wf }) {
  const params = (wf.spec?.parameters ?? []).filter((p) => p.expression === undefined);
  const initial = Object.fromEntries(
    params.map((p) => [
      p.name,
      p.type === 'list' || p.type === 'map'
        ? JSON.stringify(p.value ?? (p.type === 'list' ? [] : {}))
        : (p.value ?? ''),
    ]),
  );
  const [values, setValues] = useState(initial);
  const [error, setError] = useState(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const parameters = {};
      for (const p of params) {
        const v = typedValue(p.type, values[p.name]);
        if (v !== undefined && JSON.stringify(v) !== JSON.stringify(p.value)) parameters[p.name] = v;
      }
      const run = await api(`/namespaces/${NS}/workflows/${seg(wf.metadata.name)}/runs`, {
        method: 'POST',
        body: { parameters, initiator: { type: 'manual' } },
      });
      location.hash = `#/runs/${seg(run.metadata.name)}`;
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  const set = (name, v) => setValues({ ...values, [name]: v });
  return html`<form class="start" onSubmit=${submit}>
    <h2>Start a run</h2>
    ${params.map((p) => {
      const id = `param-${p.name}`;
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
      return html`<div class="field"><label for=${id}>${p.name} <span class="muted">${type}</span></label>${input}</div>`;
    })}
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

export function WorkflowPage({ name }) {
  const [wf, error] = useLoad(() => api(`/namespaces/${NS}/workflows/${seg(name)}`), [name]);
  const [versions] = useLoad(() => api(`/namespaces/${NS}/workflows/${seg(name)}/versions`), [name]);
  const [runs] = useLoad(() => api(`/namespaces/${NS}/runs?workflow=${seg(name)}&limit=20`), [name]);
  if (error) return html`<${Problem} error=${error} />`;
  if (!wf) return html`<p class="muted">Loading…</p>`;
  return html`<section>
    <h1>Workflow ${wf.metadata.name}</h1>
    ${wf.spec?.description ? html`<p>${wf.spec.description}</p>` : null}
    <div class="columns">
      <div class="grow"><${Graph} definition=${wf.spec?.definition} /></div>
      <div class="side"><${StartForm} wf=${wf} /></div>
    </div>
    <h2>Versions</h2>
    <div class="scroll"><table>
      <thead><tr><th>Version</th><th>Created</th><th></th></tr></thead>
      <tbody>${(versions?.items ?? []).map(
        (v) => html`<tr key=${v.metadata.name}>
        <td>${v.spec?.version ?? v.metadata.name}</td><td>${when(v.metadata.creationTimestamp)}</td>
        <td>${(v.spec?.version ?? 0) === (wf.status?.activeVersion ?? wf.status?.latestVersion) ? 'active' : ''}</td></tr>`,
      )}
      </tbody></table></div>
    <h2>Recent runs</h2>
    <ul class="plain">${newestFirst(runs?.items ?? []).map(
      (r) => html`<li key=${r.metadata.name}>
      <a href=${`#/runs/${seg(r.metadata.name)}`}>${r.metadata.name}</a> <${Phase} phase=${r.status?.phase} /></li>`,
    )}</ul>
  </section>`;
}

export function ArtifactsPage() {
  const [data, error] = useLoad(() => api(`/namespaces/${NS}/artifacts?limit=500`), []);
  return html`<section>
    <h1>Data artifacts</h1>
    <${Problem} error=${error} />
    <div class="scroll"><table>
      <thead><tr><th>Data set</th><th>Partition</th><th>Location</th><th>Producer</th><th>Announced</th></tr></thead>
      <tbody>${(data?.items ?? []).map((a) => {
        const pr = a.spec?.producer;
        return html`<tr key=${a.metadata.name}>
          <td>${a.spec?.name}</td>
          <td>${a.spec?.partition ? html`<code>${JSON.stringify(a.spec.partition)}</code>` : ''}</td>
          <td><code>${a.spec?.location ?? ''}</code></td>
          <td>${pr?.run ? html`<a href=${`#/runs/${seg(pr.run)}`}>${pr.workflow ?? pr.run}${pr.step ? ` / ${pr.step}` : ''}</a>` : (pr?.workflow ?? 'announced by a client')}</td>
          <td>${when(a.metadata.creationTimestamp)}</td></tr>`;
      })}</tbody></table></div>
    ${data && data.items.length === 0 ? html`<p class="muted">No artifacts announced yet.</p>` : null}
  </section>`;
}
