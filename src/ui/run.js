// The run page: the definition as a graph with live step states, the run's actions, and the panel
// of the selected step (parameters, outputs, messages, attempts, logs).
import dagre from '@dagrejs/dagre';
import { html } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, FINISHED, follow, NS, seg } from './api.js';
import { countsText, definitionGraph, safeUrl, stepStates } from './graph.js';
import { Phase, Problem, useLoad, when } from './views.js';

const CHAR = 7.5;

/** Positions from dagre for the block graph (nodes sized by their text). */
function layout(graph, states) {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 28, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) {
    const counts = n.step ? countsText(states.get(n.step)) : '';
    const text = Math.max(
      n.label.length,
      counts.length,
      'WaitingForInputs'.length * (n.kind === 'step' ? 0.8 : 0),
    );
    const step = n.kind === 'step';
    g.setNode(n.id, {
      width: Math.min(320, text * CHAR + (step ? 28 : 20)),
      height: step ? (counts ? 52 : 38) : 26,
    });
  }
  graph.edges.forEach((e, i) => {
    const label = e.label ?? '';
    g.setEdge(
      e.from,
      e.to,
      { width: Math.min(220, label.length * 6.5), height: label ? 14 : 0, labelpos: 'c' },
      `e${i}`,
    );
  });
  dagre.layout(g);
  return g;
}

/** The definition drawn as blocks; step nodes are buttons when `onSelect` is given. */
export function Graph({ definition, instances, selected, onSelect }) {
  const graph = useMemo(() => definitionGraph(definition), [definition]);
  const states = useMemo(() => stepStates(instances ?? []), [instances]);
  const g = useMemo(() => layout(graph, states), [graph, states]);
  const { width = 0, height = 0 } = g.graph();
  const press = (step) => (e) => {
    if (e.type === 'click' || e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onSelect?.(step);
    }
  };
  return html`<div class="graph scroll">
    <svg viewBox=${`0 0 ${width} ${height}`} width=${width} height=${height} role="group" aria-label="Workflow graph">
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
        <path d="M0,0 L10,5 L0,10 z" class="arrowhead" /></marker></defs>
      ${graph.edges.map((e, i) => {
        const ed = g.edge({ v: e.from, w: e.to, name: `e${i}` });
        const d = ed.points.map((p, j) => `${j ? 'L' : 'M'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
        return html`<g key=${`e${i}`} class=${`edge${e.back ? ' back' : ''}`}>
          <path d=${d} marker-end="url(#arrow)" />
          ${e.label ? html`<text x=${ed.x} y=${ed.y + 4} text-anchor="middle">${e.label}</text>` : null}
        </g>`;
      })}
      ${graph.nodes.map((n) => {
        const p = g.node(n.id);
        const x = p.x - p.width / 2;
        const y = p.y - p.height / 2;
        if (n.kind !== 'step') {
          return html`<g key=${n.id} class=${`node ctl kind-${n.kind}`}>
            <rect x=${x} y=${y} width=${p.width} height=${p.height} rx=${p.height / 2} />
            <text x=${p.x} y=${p.y + 4} text-anchor="middle">${n.label}</text></g>`;
        }
        const st = states.get(n.step);
        const phase = st?.phase ?? (instances ? 'NotStarted' : 'Definition');
        const counts = countsText(st);
        const label = `step ${n.step} (${n.type}): ${st ? phase : 'not started'}${counts ? `, ${counts}` : ''}`;
        return html`<g key=${n.id} class=${`node step phase-${phase}${selected === n.step ? ' selected' : ''}`}
            data-step=${n.step} tabindex=${onSelect ? 0 : undefined} role=${onSelect ? 'button' : 'img'}
            aria-label=${label} aria-pressed=${onSelect ? String(selected === n.step) : undefined}
            onClick=${onSelect ? press(n.step) : undefined} onKeyDown=${onSelect ? press(n.step) : undefined}>
          <title>${label}</title>
          <rect x=${x} y=${y} width=${p.width} height=${p.height} rx="6" />
          <text x=${p.x} y=${y + 16} text-anchor="middle" class="name">${n.label}</text>
          <text x=${p.x} y=${y + 30} text-anchor="middle" class="sub">${st ? phase : n.type}</text>
          ${counts ? html`<text x=${p.x} y=${y + 44} text-anchor="middle" class="sub">${counts}</text>` : null}
        </g>`;
      })}
    </svg>
  </div>`;
}

function Json({ value }) {
  if (value === undefined || (typeof value === 'object' && value && Object.keys(value).length === 0))
    return html`<span class="muted">none</span>`;
  return html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;
}

/** A log that follows while the step runs (re-read every few seconds; the server has no push yet). */
function Log({ run, id, stream, running }) {
  const [text, setText] = useState(undefined);
  const [error, setError] = useState(undefined);
  useEffect(() => {
    setText(undefined);
    return follow(
      () => api(`/namespaces/${NS}/runs/${seg(run)}/steps/${seg(id)}/logs?stream=${stream}`, { text: true }),
      (t) => {
        setText(t);
        setError(undefined);
      },
      { done: () => !running, onError: (e) => (e.status === 404 ? setText('') : setError(e)) },
    );
  }, [run, id, stream, running]);
  return html`<div>
    <h4>${stream}</h4>
    <${Problem} error=${error} />
    <pre class="log" tabindex="0" aria-label=${`${stream} of ${id}`}>${text === undefined ? 'Loading…' : text || '(empty)'}</pre>
  </div>`;
}

/** The time of day of a milestone (epoch ms or a timestamp). */
function clock(v) {
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleTimeString();
}

function Attempts({ run, id, attempts }) {
  const [data] = useLoad(
    () => api(`/namespaces/${NS}/runs/${seg(run)}/steps/${seg(id)}/attempts`),
    [run, id, attempts],
  );
  const items = data?.items ?? [];
  if (items.length === 0) return html`<p class="muted">No attempt launched.</p>`;
  return html`<div class="scroll"><table>
    <thead><tr><th>Attempt</th><th>Phase</th><th>Exit</th><th>Milestones</th><th>Message</th></tr></thead>
    <tbody>${items.map(
      (a) => html`<tr key=${`${a.attempt}-${a.launchId}`}>
      <td>${a.attempt}</td><td>${a.phase}</td><td>${a.exitCode ?? ''}</td>
      <td class="small">${Object.entries(a.milestones ?? {}).map(([k, v]) => html`<div>${k} ${clock(v)}</div>`)}</td>
      <td>${a.message ?? ''}</td></tr>`,
    )}
    </tbody></table></div>`;
}

/** The step named `name` in a definition (its declared parameters and inputs). */
function findStep(node, name) {
  if (Array.isArray(node)) {
    for (const c of node) {
      const found = findStep(c, name);
      if (found) return found;
    }
    return undefined;
  }
  if (!node || typeof node !== 'object') return undefined;
  if (node.step && typeof node.step === 'object') return node.step.name === name ? node.step : undefined;
  for (const v of Object.values(node)) {
    const found = findStep(v, name);
    if (found) return found;
  }
  return undefined;
}

function StepPanel({ run, step, definition, instances, onClose }) {
  const mine = instances.filter((i) => i.step === step);
  const [id, setId] = useState(mine[0]?.id);
  useEffect(() => {
    if (!mine.some((i) => i.id === id)) setId(mine[0]?.id);
  }, [step, mine.length]);
  const inst = mine.find((i) => i.id === id);
  const decl = findStep(definition, step);
  const running = inst && !['Succeeded', 'Failed', 'Skipped', 'Stopped'].includes(inst.phase);
  return html`<aside class="panel" aria-label=${`Step ${step}`}>
    <div class="panel-head">
      <h2>Step ${step}</h2>
      <button onClick=${onClose} aria-label="Close step panel">Close</button>
    </div>
    ${
      mine.length > 1
        ? html`<label>Instance <select value=${id} onChange=${(e) => setId(e.currentTarget.value)}>
          ${mine.map((i) => html`<option value=${i.id}>${i.id} (${i.phase})</option>`)}</select></label>`
        : null
    }
    ${
      !inst
        ? html`<p class="muted">This step has not started in this run.</p>`
        : html`
      <dl class="facts">
        <dt>Phase</dt><dd><${Phase} phase=${inst.phase} /></dd>
        <dt>Attempts</dt><dd>${inst.attempts ?? 0}</dd>
        ${inst.startTime ? html`<dt>Started</dt><dd>${when(inst.startTime)}</dd>` : null}
        ${inst.endTime ? html`<dt>Ended</dt><dd>${when(inst.endTime)}</dd>` : null}
        ${inst.exitCode !== undefined ? html`<dt>Exit code</dt><dd>${inst.exitCode}</dd>` : null}
        ${inst.placement ? html`<dt>Placed on</dt><dd>${inst.placement.source}${inst.placement.node ? ` / ${inst.placement.node}` : ''}</dd>` : null}
        ${inst.childRun ? html`<dt>Subworkflow run</dt><dd><a href=${`#/runs/${seg(inst.childRun)}`}>${inst.childRun}</a></dd>` : null}
        ${inst.nextAttemptTime ? html`<dt>Next attempt</dt><dd>${when(inst.nextAttemptTime)}</dd>` : null}
      </dl>
      ${inst.message ? html`<h3>Message</h3><p class="message">${inst.message}</p>` : null}
      ${
        (inst.links ?? []).length
          ? html`<h3>Links</h3><ul class="plain">${inst.links.map((l) => {
              const url = safeUrl(l.url);
              return html`<li>${url ? html`<a href=${url} target="_blank" rel="noopener noreferrer">${l.name}</a>` : html`${l.name}: <code>${l.url}</code> (not a web link)`}</li>`;
            })}</ul>`
          : null
      }
      <h3>Outputs</h3><${Json} value=${inst.outputs} />`
    }
    <h3>Parameters</h3>
    ${decl?.parameters?.length ? html`<${Json} value=${decl.parameters} />` : html`<p class="muted small">The step declares none; it sees the run's parameters.</p>`}
    ${decl?.inputs?.length ? html`<h3>Waits for</h3><${Json} value=${decl.inputs} />` : null}
    ${
      inst
        ? html`<h3>Attempts</h3><${Attempts} run=${run} id=${inst.id} attempts=${inst.attempts} />
      <h3>Logs</h3>
      <${Log} run=${run} id=${inst.id} stream="stdout" running=${running} />
      <${Log} run=${run} id=${inst.id} stream="stderr" running=${running} />`
        : null
    }
  </aside>`;
}

export function RunPage({ name }) {
  const [run, setRun] = useState(undefined);
  const [error, setError] = useState(undefined);
  const [actionError, setActionError] = useState(undefined);
  const [selected, setSelected] = useState(undefined);
  const [busy, setBusy] = useState(false);
  useEffect(
    () =>
      follow(
        () => api(`/namespaces/${NS}/runs/${seg(name)}`),
        (r) => {
          setRun(r);
          setError(undefined);
        },
        { done: (r) => FINISHED.has(r.status?.phase), onError: setError },
      ),
    [name, busy],
  );
  const wfName = run?.spec?.workflow;
  const version = run?.status?.version ?? run?.spec?.version;
  const [def] = useLoad(
    () =>
      !wfName
        ? Promise.resolve(undefined)
        : version
          ? api(`/namespaces/${NS}/workflows/${seg(wfName)}/versions/${version}`)
          : api(`/namespaces/${NS}/workflows/${seg(wfName)}`),
    [wfName, version],
  );
  if (!run) return error ? html`<${Problem} error=${error} />` : html`<p class="muted">Loading…</p>`;
  const st = run.status ?? {};
  const phase = st.phase ?? 'Pending';
  const instances = st.steps ?? [];
  const act = async (path, body) => {
    setBusy(true);
    setActionError(undefined);
    try {
      const r = await api(`/namespaces/${NS}/runs/${seg(name)}/${path}`, {
        method: 'POST',
        body: body ?? {},
      });
      if (path === 'restart') location.hash = `#/runs/${seg(r.metadata.name)}`;
    } catch (err) {
      setActionError(err);
    } finally {
      setBusy(false);
    }
  };
  const definition = def?.spec?.definition;
  return html`<section>
    <h1>Run ${run.metadata.name} <${Phase} phase=${phase} /></h1>
    <dl class="facts inline">
      <dt>Workflow</dt><dd><a href=${`#/workflows/${seg(wfName)}`}>${wfName}</a>${version ? ` v${version}` : ''}</dd>
      <dt>Started</dt><dd>${when(st.startTime ?? run.metadata.creationTimestamp)}</dd>
      ${st.duration ? html`<dt>Duration</dt><dd>${st.duration}</dd>` : null}
      <dt>Initiator</dt><dd>${run.spec.initiator?.type ?? ''}</dd>
      ${run.spec.restartOf ? html`<dt>Restart of</dt><dd><a href=${`#/runs/${seg(run.spec.restartOf.run)}`}>${run.spec.restartOf.run}</a> (from ${run.spec.restartOf.from})</dd>` : null}
      ${st.summary ? html`<dt>Steps</dt><dd>${st.summary.total}${st.summary.truncated ? ' (only the first are drawn)' : ''}</dd>` : null}
    </dl>
    ${st.message ? html`<p class="message">${st.message}</p>` : null}
    <div class="actions">
      ${!FINISHED.has(phase) ? html`<button disabled=${busy || run.spec.stop} onClick=${() => act('stop')}>${run.spec.stop ? 'Stopping…' : 'Stop'}</button>` : null}
      ${phase === 'Failed' || phase === 'Stopped' ? html`<button disabled=${busy} onClick=${() => act('restart', { from: 'failed' })}>Restart from failed</button>` : null}
      ${FINISHED.has(phase) ? html`<button disabled=${busy} onClick=${() => act('restart', { from: 'beginning' })}>Restart from the beginning</button>` : null}
    </div>
    <${Problem} error=${actionError} />
    <${Problem} error=${error} />
    <div class="columns">
      <div class="grow">
        ${definition ? html`<${Graph} definition=${definition} instances=${instances} selected=${selected} onSelect=${setSelected} />` : html`<p class="muted">Loading the definition…</p>`}
        <h2>Step instances</h2>
        <div class="scroll"><table>
          <thead><tr><th>Step</th><th>Phase</th><th>Attempts</th><th>Started</th><th>Ended</th></tr></thead>
          <tbody>${instances.map(
            (i) => html`<tr key=${i.id}>
            <td><button class="link" onClick=${() => setSelected(i.step)}>${i.id}</button></td>
            <td><${Phase} phase=${i.phase} /></td><td>${i.attempts ?? 0}</td>
            <td>${when(i.startTime)}</td><td>${when(i.endTime)}</td></tr>`,
          )}
          </tbody></table></div>
        <h2>Parameters</h2>
        <${Json} value=${st.parameters} />
      </div>
      ${selected ? html`<${StepPanel} run=${name} step=${selected} definition=${definition} instances=${instances} onClose=${() => setSelected(undefined)} />` : null}
    </div>
  </section>`;
}
