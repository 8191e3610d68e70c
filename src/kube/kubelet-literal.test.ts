import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { asKubeletRuns, kubeletExpand } from '../../test/support/kubelet.ts';
import { kubeletLiteral, literalContainer } from './kubelet-literal.ts';

describe('kubeletLiteral', () => {
  const secrets = { TOKEN: 's3cr3t', MESON_TASK: '{"script":"x"}' };

  it('the oracle expands as the kubelet does', () => {
    expect(kubeletExpand('a $(TOKEN) $$ $$(TOKEN) $(NOPE) $x $', secrets)).toBe(
      'a s3cr3t $ $(TOKEN) $(NOPE) $x $',
    );
  });

  it('gives back every string exactly after the expansion, whatever it holds', () => {
    const hostile = [
      '$(TOKEN)',
      'echo $$ > pid',
      '$$(TOKEN)',
      '$$$(TOKEN)',
      '$(MESON_TASK)',
      '${TOKEN}',
      'cost: 5$',
      '$',
      '$$',
      '$((1+2))',
      '$(TOKEN',
      'a$(TOKEN)b$(TOKEN)',
    ];
    for (const s of hostile) expect(kubeletExpand(kubeletLiteral(s), secrets)).toBe(s);
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('$', '(', ')', 'T', 'O', 'K', 'E', 'N', 'a', ' ') }),
        (s) => {
          expect(kubeletExpand(kubeletLiteral(s), { TOKEN: 'x', T: 'y' })).toBe(s);
        },
      ),
    );
  });

  it('escapes command, args and literal env values, never valueFrom', () => {
    const c = literalContainer({
      name: 'main',
      command: ['/bin/sh', '-c', 'echo $$ $(TOKEN)'],
      args: ['$(TOKEN)'],
      env: [
        { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } },
        { name: 'PARAM', value: '$(TOKEN)' },
      ],
    });
    expect(c.command).toEqual(['/bin/sh', '-c', 'echo $$$$ $$(TOKEN)']);
    expect(c.args).toEqual(['$$(TOKEN)']);
    expect(c.env?.[0]).toEqual({ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } });
    // the parameter does not read the secret: it is the string its starter gave
    expect(asKubeletRuns(c).env.PARAM).toBe('$(TOKEN)');
    expect(asKubeletRuns(c).command).toEqual(['/bin/sh', '-c', 'echo $$ $(TOKEN)']);
  });
});
