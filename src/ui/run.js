// The run page: the definition as a graph with live step states (the run's event stream), the
// Gantt chart of its attempts, the run's actions, and the panel of the selected step
// (parameters, inputs, outputs, messages, attempts, logs).
import dagre from '@dagrejs/dagre';
import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { api, FINISHED, NS, seg, streamText, watch } from './api.js';
import { countsText, definitionGraph, safeUrl, stepStates } from './graph.js';
import { span, timeline } from './timeline.js';
import {
  changedParams,
  ParamFields,
  Phase,
  Problem,
  paramValues,
  useAction,
  useLoad,
  when,
} from './views.js';

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

/** Most characters of a followed log kept on the page (the start is cut; the full log is one GET away). */
export const LOG_KEEP_CHARS = 512 * 1024;

/** A finished attempt's log, read once. */
function Log({ run, id, stream, attempts }) {
  const [text, error] = useLoad(
    () =>
      api(`/namespaces/${NS}/runs/${seg(run)}/steps/${seg(id)}/logs?stream=${stream}`, { text: true }).catch(
        (e) => (e.status === 404 ? '' : Promise.reject(e)),
      ),
    [run, id, stream, attempts],
  );
  return html`<div>
    <h4>${stream}</h4>
    <${Problem} error=${error} />
    <pre class="log" tabindex="0" aria-label=${`${stream} of ${id}`}>${text === undefined ? (error ? '' : 'Loading…') : text || '(empty)'}</pre>
  </div>`;
}

/**
 * The output of a running attempt as it is written (`logs?follow=true&stream=all`: one open
 * answer for stdout and stderr), until the attempt ends; then the page shows each stream.
 */
function LiveLog({ run, id, attempts }) {
  const [text, setText] = useState('');
  const [cut, setCut] = useState(false);
  const [state, setState] = useState('following');
  useEffect(() => {
    const ctl = new AbortController();
    let all = '';
    let dropped = false;
    let timer;
    const show = () => {
      timer = undefined;
      setText(all);
      setCut(dropped);
    };
    setText('');
    setState('following');
    streamText(
      `/namespaces/${NS}/runs/${seg(run)}/steps/${seg(id)}/logs?follow=true&stream=all`,
      (t) => {
        all += t;
        if (all.length > LOG_KEEP_CHARS) {
          all = all.slice(all.length - LOG_KEEP_CHARS);
          dropped = true;
        }
        timer ??= setTimeout(show, 100);
      },
      ctl.signal,
    ).then(
      () => {
        clearTimeout(timer);
        show();
        setState('ended');
      },
      (e) => {
        if (ctl.signal.aborted) return;
        clearTimeout(timer);
        // not followed (e.g. 429: the server's streams are taken): the log as it is now
        api(`/namespaces/${NS}/runs/${seg(run)}/steps/${seg(id)}/logs?stream=all`, { text: true }).then(
          (t) => {
            if (ctl.signal.aborted) return;
            all = t.length > LOG_KEEP_CHARS ? t.slice(t.length - LOG_KEEP_CHARS) : t;
            dropped = t.length > LOG_KEEP_CHARS;
            show();
          },
          () => !ctl.signal.aborted && show(),
        );
        setState(e.message);
      },
    );
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [run, id, attempts]);
  return html`<div>
    <h4>output <span class="live-badge">${state === 'following' ? 'live' : state === 'ended' ? 'attempt ended' : `not followed (${state}): as read at ${new Date().toLocaleTimeString()}`}</span></h4>
    ${cut ? html`<p class="muted small">Only the last ${LOG_KEEP_CHARS / 1024} KiB are shown.</p>` : null}
    <pre class="log" tabindex="0" aria-label=${`output of ${id}`}>${text || (state === 'following' ? 'Waiting for output…' : '(empty)')}</pre>
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

/** A partition value with the run's parameters put in for `${name}`; undefined when another expression remains. */
export function resolvePartition(partition, parameters) {
  const out = {};
  for (const [k, v] of Object.entries(partition ?? {})) {
    const text = String(v).replace(/\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}/g, (m, name) =>
      parameters && Object.hasOwn(parameters, name) ? String(parameters[name]) : m,
    );
    if (text.includes('${')) return undefined;
    out[k] = text;
  }
  return out;
}

/** One declared input: is a matching artifact announced? (the API's artifacts filter). */
function Input({ input, parameters, waiting }) {
  const partition = useMemo(() => resolvePartition(input.partition, parameters), [input, parameters]);
  const [found] = useLoad(() => {
    if (!partition) return Promise.resolve(undefined);
    const q = new URLSearchParams({ name: input.name, limit: '1' });
    for (const [k, v] of Object.entries(partition)) q.set(`partition.${k}`, v);
    return api(`/namespaces/${NS}/artifacts?${q}`);
  }, [input.name, JSON.stringify(partition), waiting]);
  const shown = partition ?? input.partition;
  const state = !found
    ? partition
      ? ''
      : 'its partition is computed when the step runs'
    : found.items.length
      ? 'announced'
      : waiting
        ? 'missing: the step waits for it'
        : 'not announced';
  return html`<li><code>${input.name}</code>${
    shown && Object.keys(shown).length
      ? html` partition <code>${Object.entries(shown)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')}</code>`
      : null
  } <span class=${`input-state${state.startsWith('missing') ? ' missing' : ''}`}>${state}</span></li>`;
}

function StepPanel({ run, step, definition, instances, parameters, onClose, onRestartFrom }) {
  const mine = instances.filter((i) => i.step === step);
  const [id, setId] = useState(mine[0]?.id);
  useEffect(() => {
    if (!mine.some((i) => i.id === id)) setId(mine[0]?.id);
  }, [step, mine.length]);
  const inst = mine.find((i) => i.id === id);
  const decl = findStep(definition, step);
  const running = inst && !['Succeeded', 'Failed', 'Skipped', 'Stopped'].includes(inst.phase);
  const waiting = inst?.phase === 'WaitingForInputs';
  return html`<aside class="panel" aria-label=${`Step ${step}`}>
    <div class="panel-head">
      <h2>Step ${step}</h2>
      <button onClick=${onClose} aria-label="Close step panel">Close</button>
    </div>
    ${onRestartFrom ? html`<p><button onClick=${() => onRestartFrom(step)}>Restart from this step…</button></p>` : null}
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
        ${inst.inputsDeadline ? html`<dt>Waits until</dt><dd>${when(inst.inputsDeadline)}</dd>` : null}
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
    ${
      decl?.inputs?.length
        ? html`<h3>${waiting ? 'Waiting for' : 'Inputs'}</h3><ul class="plain inputs">${decl.inputs.map(
            (input, i) =>
              html`<${Input} key=${i} input=${input} parameters=${parameters} waiting=${waiting} />`,
          )}</ul>`
        : null
    }
    <h3>Parameters</h3>
    ${decl?.parameters?.length ? html`<${Json} value=${decl.parameters} />` : html`<p class="muted small">The step declares none; it sees the run's parameters.</p>`}
    ${
      inst
        ? html`<h3>Attempts</h3><${Attempts} run=${run} id=${inst.id} attempts=${inst.attempts} />
      <h3>Logs</h3>
      ${
        (inst.attempts ?? 0) === 0
          ? html`<p class="muted">No output: no attempt has been launched.</p>`
          : running
            ? html`<${LiveLog} run=${run} id=${inst.id} attempts=${inst.attempts} />`
            : html`<${Log} run=${run} id=${inst.id} stream="stdout" attempts=${`${inst.attempts}-${inst.phase}`} />
        <${Log} run=${run} id=${inst.id} stream="stderr" attempts=${`${inst.attempts}-${inst.phase}`} />`
      }`
        : null
    }
  </aside>`;
}

/** Rows of the step instances table shown at first, and added by each "show more". */
export const INSTANCE_ROWS = 50;

/** Rows of the Gantt chart shown at first, and added by each "show more". */
export const TIMELINE_ROWS = 25;

/**
 * The Gantt chart: per step instance, each attempt from launch to end. Attempts are read
 * (GET …/attempts) only for the rows on screen, again when a row's phase or attempts change.
 */
function Timeline({ run, instances, running, onSelect }) {
  const [limit, setLimit] = useState(TIMELINE_ROWS);
  const [attempts, setAttempts] = useState(() => new Map());
  const asked = useRef(new Map());
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!running) return;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [running]);
  const started = instances.filter((i) => i.startTime || (i.attempts ?? 0) > 0);
  const shownIds = useMemo(() => {
    const all = timeline(started, new Map(), Date.now()).rows;
    return all.slice(0, limit).map((r) => r.id);
  }, [started.length, limit, instances]);
  useEffect(() => {
    for (const inst of started) {
      if (!shownIds.includes(inst.id) || !(inst.attempts > 0)) continue;
      const key = `${inst.phase}/${inst.attempts}`;
      if (asked.current.get(inst.id) === key) continue;
      asked.current.set(inst.id, key);
      api(`/namespaces/${NS}/runs/${seg(run)}/steps/${seg(inst.id)}/attempts`).then(
        (d) => setAttempts((m) => new Map(m).set(inst.id, d.items ?? [])),
        () => asked.current.delete(inst.id),
      );
    }
  }, [shownIds, instances]);
  const shown = started.filter((i) => shownIds.includes(i.id));
  const chart = timeline(shown, attempts, running ? now : Date.now());
  if (started.length === 0) return html`<p class="muted">No step has started yet.</p>`;
  return html`<div class="gantt" role="table" aria-label="Timeline of attempts">
    <div class="gantt-axis muted small" role="row">
      <span role="columnheader">Step instance</span>
      <span role="columnheader">${new Date(chart.t0).toLocaleTimeString()} → ${span(chart.t1 - chart.t0)}</span>
    </div>
    ${chart.rows.map(
      (r) => html`<div class="gantt-row" role="row" key=${r.id}>
        <span class="gantt-name" role="rowheader" title=${r.id}><button class="link" onClick=${() =>
          onSelect(instances.find((i) => i.id === r.id)?.step)}>${r.id}</button></span>
        <span class="gantt-track" role="cell">${r.bars.map((b) => {
          const label = `${r.id} attempt ${b.attempt}: ${b.phase || r.phase}, ${span(b.end - b.start)}`;
          return html`<span class=${`gantt-bar phase-${b.phase || r.phase}`} style=${`left:${b.left.toFixed(2)}%;width:${b.width.toFixed(2)}%`}
            title=${label} aria-label=${label} data-attempt=${b.attempt}></span>`;
        })}</span>
      </div>`,
    )}
    ${
      started.length > shown.length
        ? html`<p class="small">${shown.length} of ${started.length} instances.${' '}
          <button class="link" onClick=${() => setLimit(limit + TIMELINE_ROWS)}>Show ${Math.min(TIMELINE_ROWS, started.length - shown.length)} more</button></p>`
        : null
    }
  </div>`;
}

/**
 * A run and its step instances, kept current by the run's event stream (one GET, then
 * server-sent events, resumed from the last resourceVersion after a break).
 */
function useLiveRun(name) {
  const [state, setState] = useState({ run: undefined, instances: [], error: undefined, live: false });
  useEffect(() => {
    let run;
    const steps = new Map();
    let stop = () => {};
    let cancelled = false;
    let timer;
    let patch = {};
    const publish = (more = {}) => {
      patch = { ...patch, ...more };
      // a burst of events (every instance after a reconnect) is drawn once
      timer ??= setTimeout(() => {
        timer = undefined;
        if (!cancelled) setState((s) => ({ ...s, ...patch, run, instances: [...steps.values()] }));
        patch = {};
      }, 30);
    };
    const load = async () => {
      const r = await api(`/namespaces/${NS}/runs/${seg(name)}`);
      run = r;
      for (const st of r.status?.steps ?? []) steps.set(st.id, st);
      publish({ error: undefined });
      return r;
    };
    load().then(
      (r) => {
        if (cancelled || FINISHED.has(r.status?.phase)) return;
        stop = watch(`/namespaces/${NS}/runs/${seg(name)}/events`, {
          resourceVersion: r.metadata.resourceVersion,
          onEvent: (e) => {
            if (e.step) steps.set(e.step.id, e.step);
            else if (e.type === 'DELETED') publish({ error: new Error('This run was deleted.') });
            else if (e.object?.status !== undefined || e.object?.spec) {
              run = { ...e.object, status: { ...(e.object.status ?? {}), steps: undefined } };
              publish({ error: undefined });
            }
            publish();
          },
          done: () => FINISHED.has(run?.status?.phase),
          resync: load,
          onError: (error) => publish({ error, live: false }),
          onLive: (live) => publish({ live }),
        });
      },
      (error) => !cancelled && setState((s) => ({ ...s, error })),
    );
    return () => {
      cancelled = true;
      clearTimeout(timer);
      stop();
    };
  }, [name]);
  return state;
}

/**
 * Restart with other parameters or another version: only what did not succeed, from a step (it
 * and everything downstream run again, the rest is reused), or from the beginning.
 */
function RestartForm({ name, run, declared, steps, initialStep, onDone }) {
  const st = run.status ?? {};
  const phase = st.phase;
  const canFailed = phase === 'Failed' || phase === 'Stopped';
  const params = (declared ?? []).filter((p) => p.expression === undefined);
  const current = useMemo(
    () => params.map((p) => ({ ...p, value: st.parameters?.[p.name] ?? p.value })),
    [declared, st.parameters],
  );
  const [values, setValues] = useState(() => paramValues(current));
  const [from, setFrom] = useState(initialStep ? 'step' : canFailed ? 'failed' : 'beginning');
  const [step, setStep] = useState(initialStep ?? steps[0] ?? '');
  const [active, setActive] = useState(false);
  const [submit, busy, error] = useAction(async () => {
    const parameters = changedParams(current, values);
    const r = await api(`/namespaces/${NS}/runs/${seg(name)}/restart`, {
      method: 'POST',
      body: {
        from,
        ...(from === 'step' ? { step } : {}),
        ...(Object.keys(parameters).length ? { parameters } : {}),
        ...(active ? { version: 'active' } : {}),
      },
    });
    onDone(r);
  });
  return html`<form class="restart" onSubmit=${submit} aria-label="Restart with changes">
    <fieldset><legend>Restart</legend>
      ${canFailed ? html`<label><input type="radio" name="from" checked=${from === 'failed'} onChange=${() => setFrom('failed')} /> only what did not succeed</label>` : null}
      ${
        steps.length
          ? html`<label><input type="radio" name="from" checked=${from === 'step'} onChange=${() => setFrom('step')} /> from step${' '}
          <select aria-label="Restart from step" value=${step} onChange=${(e) => {
            setStep(e.currentTarget.value);
            setFrom('step');
          }}>${steps.map((n) => html`<option value=${n}>${n}</option>`)}</select></label>`
          : null
      }
      <label><input type="radio" name="from" checked=${from === 'beginning'} onChange=${() => setFrom('beginning')} /> from the beginning</label>
    </fieldset>
    <${ParamFields} params=${current} values=${values} onChange=${setValues} prefix="restart-" />
    <label><input type="checkbox" checked=${active} onChange=${(e) => setActive(e.currentTarget.checked)} /> run the workflow's active version (not v${st.version ?? '?'})</label>
    <${Problem} error=${error} />
    <button type="submit" disabled=${busy}>Restart run</button>
  </form>`;
}

export function RunPage({ name }) {
  const { run, instances, error, live } = useLiveRun(name);
  // a stop shows through the run's event stream; a restart opens the new run
  const [act, busy, actionError] = useAction(async (path, body) => {
    const r = await api(`/namespaces/${NS}/runs/${seg(name)}/${path}`, { method: 'POST', body: body ?? {} });
    if (path === 'restart') location.hash = `#/runs/${seg(r.metadata.name)}`;
  });
  const [selected, setSelected] = useState(undefined);
  const [tab, setTab] = useState('graph');
  const [restarting, setRestarting] = useState(false);
  const [rows, setRows] = useState(INSTANCE_ROWS);
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
  const definition = def?.spec?.definition;
  const finished = FINISHED.has(phase);
  const stepNames = definition
    ? [
        ...new Set(
          definitionGraph(definition)
            .nodes.filter((n) => n.step)
            .map((n) => n.step),
        ),
      ]
    : [];
  return html`<section>
    <h1>Run ${run.metadata.name} <${Phase} phase=${phase} /></h1>
    <dl class="facts inline">
      <dt>Workflow</dt><dd><a href=${`#/workflows/${seg(wfName)}`}>${wfName}</a>${version ? ` v${version}` : ''}</dd>
      <dt>Started</dt><dd>${when(st.startTime ?? run.metadata.creationTimestamp)}</dd>
      ${st.duration ? html`<dt>Duration</dt><dd>${st.duration}</dd>` : null}
      <dt>Initiator</dt><dd>${run.spec.initiator?.type ?? ''}${run.spec.initiator?.date ? ` ${run.spec.initiator.date}` : ''}</dd>
      ${run.spec.restartOf ? html`<dt>Restart of</dt><dd><a href=${`#/runs/${seg(run.spec.restartOf.run)}`}>${run.spec.restartOf.run}</a> (from ${run.spec.restartOf.from === 'step' ? `step ${run.spec.restartOf.step}` : run.spec.restartOf.from})</dd>` : null}
      ${st.summary ? html`<dt>Steps</dt><dd>${st.summary.total}${st.summary.truncated ? ' (only the first are drawn)' : ''}</dd>` : null}
      ${finished ? null : html`<dt>Updates</dt><dd class="live-badge">${live ? 'live' : 'reconnecting…'}</dd>`}
    </dl>
    ${st.message ? html`<p class="message">${st.message}</p>` : null}
    <div class="actions">
      ${!finished ? html`<button disabled=${busy || run.spec.stop} onClick=${() => act('stop')}>${run.spec.stop ? 'Stopping…' : 'Stop'}</button>` : null}
      ${phase === 'Failed' || phase === 'Stopped' ? html`<button disabled=${busy} onClick=${() => act('restart', { from: 'failed' })}>Restart from failed</button>` : null}
      ${finished ? html`<button disabled=${busy} onClick=${() => act('restart', { from: 'beginning' })}>Restart from the beginning</button>` : null}
      ${finished ? html`<button aria-expanded=${String(!!restarting)} onClick=${() => setRestarting(restarting ? false : {})}>Restart with changes…</button>` : null}
    </div>
    ${
      restarting && finished
        ? html`<${RestartForm} key=${restarting.step ?? ''} name=${name} run=${run} declared=${def?.spec?.parameters}
            steps=${stepNames} initialStep=${restarting.step}
            onDone=${(r) => (location.hash = `#/runs/${seg(r.metadata.name)}`)} />`
        : null
    }
    <${Problem} error=${actionError} />
    <${Problem} error=${error} />
    <div class="columns">
      <div class="grow">
        <div class="tabs" role="tablist">
          <button role="tab" aria-selected=${String(tab === 'graph')} onClick=${() => setTab('graph')}>Graph</button>
          <button role="tab" aria-selected=${String(tab === 'timeline')} onClick=${() => setTab('timeline')}>Timeline</button>
        </div>
        ${
          tab === 'timeline'
            ? html`<${Timeline} run=${name} instances=${instances} running=${!finished} onSelect=${setSelected} />`
            : definition
              ? html`<${Graph} definition=${definition} instances=${instances} selected=${selected} onSelect=${setSelected} />`
              : html`<p class="muted">Loading the definition…</p>`
        }
        <h2>Step instances</h2>
        <div class="scroll"><table>
          <thead><tr><th>Step</th><th>Phase</th><th>Attempts</th><th>Started</th><th>Ended</th></tr></thead>
          <tbody>${instances.slice(0, rows).map(
            (i) => html`<tr key=${i.id}>
            <td><button class="link" onClick=${() => setSelected(i.step)}>${i.id}</button></td>
            <td><${Phase} phase=${i.phase} /></td><td>${i.attempts ?? 0}</td>
            <td>${when(i.startTime)}</td><td>${when(i.endTime)}</td></tr>`,
          )}
          </tbody></table></div>
        ${
          instances.length > rows
            ? html`<p class="small">${rows} of ${instances.length} instances.${' '}
              <button class="link" onClick=${() => setRows(rows + INSTANCE_ROWS)}>Show ${Math.min(INSTANCE_ROWS, instances.length - rows)} more</button></p>`
            : null
        }
        <h2>Parameters</h2>
        <${Json} value=${st.parameters} />
      </div>
      ${
        selected
          ? html`<${StepPanel} run=${name} step=${selected} definition=${definition} instances=${instances} parameters=${st.parameters}
            onClose=${() => setSelected(undefined)}
            onRestartFrom=${
              finished
                ? (step) => {
                    setRestarting({ step });
                    scrollTo({ top: 0 });
                  }
                : undefined
            } />`
          : null
      }
    </div>
  </section>`;
}
