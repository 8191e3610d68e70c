// The definition of a workflow as a graph that mirrors its blocks, and the live state of each step
// (pure functions: no DOM, no fetch; unit-tested in test/ui/graph.test.ts).
//
// sequence: a chain; parallel: a fork and a join; or/xor: a fork whose edges carry the branch
// conditions; loop: a head and a `while` node with an edge back; foreach: a head and an end with
// its body drawn once (collapsed: each step shows how many of its instances are in which phase).

/** Step phases in the order that decides the colour of a step with several instances. */
const PHASE_RANK = [
  'Failed',
  'Running',
  'Queued',
  'WaitingForInputs',
  'Pending',
  'Stopped',
  'Succeeded',
  'Skipped',
];

/**
 * @param {unknown} definition a Workflow's spec.definition
 * @returns {{ nodes: GraphNode[], edges: GraphEdge[] }}
 */
export function definitionGraph(definition) {
  /** @type {GraphNode[]} */
  const nodes = [];
  /** @type {GraphEdge[]} */
  const edges = [];
  let n = 0;
  const add = (kind, label, extra = {}) => {
    const id = `n${++n}`;
    nodes.push({ id, kind, label, ...extra });
    return id;
  };
  const link = (from, to, label, back = false) => {
    edges.push({ from, to, ...(label ? { label } : {}), ...(back ? { back: true } : {}) });
  };
  /** @returns {{ entry: string, exit: string }} */
  const walk = (node, foreach) => {
    if (!node || typeof node !== 'object') {
      const id = add('unknown', '?');
      return { entry: id, exit: id };
    }
    if (node.step) {
      const s = node.step;
      const type = ['shell', 'container', 'spark', 'copy', 'subworkflow', 'noop'].find(
        (t) => s[t] !== undefined,
      );
      const id = add('step', String(s.name), {
        step: String(s.name),
        type: type ?? 'step',
        ...(foreach ? { foreach } : {}),
        ...(type === 'subworkflow' && s.subworkflow?.workflow
          ? { workflow: String(s.subworkflow.workflow) }
          : {}),
      });
      return { entry: id, exit: id };
    }
    if (Array.isArray(node.sequence)) {
      const parts = node.sequence.map((c) => walk(c, foreach));
      for (let i = 1; i < parts.length; i++) link(parts[i - 1].exit, parts[i].entry);
      return { entry: parts[0].entry, exit: parts[parts.length - 1].exit };
    }
    if (Array.isArray(node.parallel)) {
      const fork = add('fork', 'parallel');
      const join = add('join', 'all done');
      for (const c of node.parallel) {
        const p = walk(c, foreach);
        link(fork, p.entry);
        link(p.exit, join);
      }
      return { entry: fork, exit: join };
    }
    for (const kind of ['or', 'xor']) {
      if (!Array.isArray(node[kind])) continue;
      const fork = add(kind, kind === 'or' ? 'or (every true branch)' : 'xor (first true branch)');
      const join = add('join', kind === 'or' ? 'branches done' : 'branch done');
      let otherwise = false;
      for (const b of node[kind]) {
        const body = b?.otherwise ?? b?.then;
        const p = walk(body, foreach);
        if (b?.otherwise !== undefined) otherwise = true;
        link(fork, p.entry, b?.otherwise !== undefined ? 'otherwise' : `when ${b?.when ?? '?'}`);
        link(p.exit, join);
      }
      if (!otherwise) link(fork, join, 'none holds');
      return { entry: fork, exit: join };
    }
    if (node.loop) {
      const head = add('loop', `loop (at most ${node.loop.maxIterations})`);
      const p = walk(node.loop.do, foreach);
      const tail = add('while', `while ${node.loop.while}`);
      link(head, p.entry);
      link(p.exit, tail);
      link(tail, head, 'repeat', true);
      return { entry: head, exit: tail };
    }
    if (node.foreach) {
      const f = node.foreach;
      const label = `foreach ${f.as} in ${f.items}${f.parallelism ? ` (${f.parallelism} at once)` : ''}`;
      const head = add('foreach', label);
      const p = walk(f.do, head);
      const end = add('join', 'every item done');
      link(head, p.entry);
      link(p.exit, end);
      return { entry: head, exit: end };
    }
    const id = add('unknown', Object.keys(node)[0] ?? '?');
    return { entry: id, exit: id };
  };
  walk(definition, undefined);
  return { nodes, edges };
}

/**
 * The state of each step of the definition from a run's step instances (a step in a foreach or a
 * loop has several: `agg[0]`, `agg[1]`...).
 * @param {{ step: string, phase: string }[]} instances
 * @returns {Map<string, StepState>}
 */
export function stepStates(instances) {
  /** @type {Map<string, StepState>} */
  const states = new Map();
  for (const inst of instances ?? []) {
    let s = states.get(inst.step);
    if (!s) {
      s = { phase: inst.phase, total: 0, phases: {} };
      states.set(inst.step, s);
    }
    s.total++;
    s.phases[inst.phase] = (s.phases[inst.phase] ?? 0) + 1;
    if (PHASE_RANK.indexOf(inst.phase) < PHASE_RANK.indexOf(s.phase)) s.phase = inst.phase;
  }
  return states;
}

/** "3 Succeeded, 1 Running" for a step with several instances. */
export function countsText(state) {
  if (!state || state.total < 2) return '';
  return PHASE_RANK.filter((p) => state.phases[p])
    .map((p) => `${state.phases[p]} ${p}`)
    .join(', ');
}

/** Only http(s) links become anchors: a step's output never becomes a javascript: URL. */
export function safeUrl(url) {
  try {
    const u = new URL(String(url));
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/**
 * @typedef {{ id: string, kind: string, label: string, step?: string, type?: string, foreach?: string, workflow?: string }} GraphNode
 * @typedef {{ from: string, to: string, label?: string, back?: boolean }} GraphEdge
 * @typedef {{ phase: string, total: number, phases: Record<string, number> }} StepState
 */
