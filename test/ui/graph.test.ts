// biome-ignore-all lint/suspicious/noThenProperty: `then` is the branch field of the workflow API
import { describe, expect, it } from 'vitest';
import { countsText, definitionGraph, safeUrl, stepStates } from '../../src/ui/graph.js';

const step = (name: string, type = 'noop') => ({ step: { name, [type]: {} } });

describe('definitionGraph', () => {
  it('mirrors the blocks: sequence chain, parallel fork/join, xor conditions, loop back edge, foreach once', () => {
    const g = definitionGraph({
      sequence: [
        step('a', 'shell'),
        { parallel: [step('b'), step('c')] },
        { xor: [{ when: 'x > 1', then: step('d') }, { otherwise: step('e') }] },
        { loop: { do: step('f'), while: 'LOOP_INDEX < 2', maxIterations: 5 } },
        { foreach: { items: 'range(3)', as: 'i', parallelism: 2, do: step('g') } },
      ],
    });
    const byLabel = (l: string) => g.nodes.find((n) => n.label === l)!;
    const edge = (from: string, to: string) =>
      g.edges.find((e) => e.from === byLabel(from).id && e.to === byLabel(to).id);
    expect(g.nodes.filter((n) => n.kind === 'step').map((n) => n.step)).toEqual([
      'a',
      'b',
      'c',
      'd',
      'e',
      'f',
      'g',
    ]);
    expect(byLabel('a').type).toBe('shell');
    expect(edge('a', 'parallel')).toBeDefined();
    expect(edge('parallel', 'b')).toBeDefined();
    expect(edge('c', 'all done')).toBeDefined();
    expect(edge('xor (first true branch)', 'd')?.label).toBe('when x > 1');
    expect(edge('xor (first true branch)', 'e')?.label).toBe('otherwise');
    expect(edge('while LOOP_INDEX < 2', 'loop (at most 5)')).toMatchObject({ back: true, label: 'repeat' });
    const head = byLabel('foreach i in range(3) (2 at once)');
    // the body is drawn once, and knows its foreach
    expect(g.nodes.filter((n) => n.step === 'g')).toEqual([expect.objectContaining({ foreach: head.id })]);
  });

  it('shows an xor without otherwise as able to skip every branch', () => {
    const g = definitionGraph({ xor: [{ when: 'p', then: step('x') }] });
    expect(g.edges.some((e) => e.label === 'none holds')).toBe(true);
  });

  it('draws something for a shape it does not know instead of failing', () => {
    expect(definitionGraph(null).nodes).toHaveLength(1);
    expect(definitionGraph({ weird: 1 }).nodes[0]!.label).toBe('weird');
  });
});

describe('stepStates', () => {
  it('counts the instances of a step and shows the most urgent phase', () => {
    const s = stepStates([
      { step: 'g', phase: 'Succeeded' },
      { step: 'g', phase: 'Failed' },
      { step: 'g', phase: 'Succeeded' },
      { step: 'a', phase: 'Running' },
    ]);
    expect(s.get('g')).toEqual({ phase: 'Failed', total: 3, phases: { Succeeded: 2, Failed: 1 } });
    expect(countsText(s.get('g'))).toBe('1 Failed, 2 Succeeded');
    expect(countsText(s.get('a'))).toBe('');
  });
});

describe('safeUrl', () => {
  it('keeps http(s) links only', () => {
    expect(safeUrl('https://spark.example/app/1')).toBe('https://spark.example/app/1');
    for (const bad of [
      'javascript:alert(1)',
      'JaVaScRiPt:alert(1)',
      ' javascript:alert(1)',
      'java\tscript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      'vbscript:x',
      '//evil.example/x',
      '/relative',
      '',
    ]) {
      expect(safeUrl(bad), bad).toBeUndefined();
    }
  });
});
