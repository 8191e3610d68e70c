import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { interpreterCodeIndex, scriptSpliceWarnings } from './shell-lint.ts';

const problems = (script: string) => scriptSpliceWarnings(script).map((w) => [w.expr, w.problem]);

describe('scriptSpliceWarnings', () => {
  it('says nothing about values used as data: double quotes, plain words, here-documents, substitutions', () => {
    for (const script of [
      'echo "Hello, ${who}!"',
      'mkdir -p "${dir}" && cd "${dir}"',
      'for x in ${list}; do echo "$x"; done',
      'FOO=${x} env | grep FOO',
      'cat <<EOF\n${x} and ${y}\nEOF\necho "${z}"',
      'n=$(wc -l < "${f}")',
      'echo `echo ${x}`',
      'case "${x}" in a) echo "${y}";; esac',
      '[ "${x}" -eq 1 ] && echo ok',
      'printf \'%s\\n\' "${x}"',
      'echo "it\'s ${x}"',
      '# don\'t ${x}\necho "${y}"',
      'export A="${x}"',
      'echo $${HOME} "${x}"',
      'awk -v d="${day}" \'BEGIN { print d }\'',
    ])
      expect(problems(script), script).toEqual([]);
  });

  it('warns where the reference would not expand', () => {
    expect(problems("echo '${x}'")).toEqual([['x', 'not-expanded']]);
    expect(problems("awk 'BEGIN { srand(${day}) }'")).toEqual([['day', 'not-expanded']]);
    expect(problems("echo $'a ${x}'")).toEqual([['x', 'not-expanded']]);
    expect(problems('cat <<\'EOF\'\n${x}\nEOF\necho "${y}"')).toEqual([['x', 'not-expanded']]);
    expect(problems('cat <<"END"\n${x}\nEND')).toEqual([['x', 'not-expanded']]);
    expect(problems('cat <<-\\EOF\n\t${x}\n\tEOF')).toEqual([['x', 'not-expanded']]);
    expect(problems('echo \\${x} "\\${y}"')).toEqual([
      ['x', 'not-expanded'],
      ['y', 'not-expanded'],
    ]);
  });

  it('warns where bash evaluates a value as arithmetic', () => {
    expect(problems('echo $((${n} + 1))')).toEqual([['n', 'arithmetic']]);
    expect(problems('echo "$(( ${n} * 2 ))"')).toEqual([['n', 'arithmetic']]);
    expect(problems('(( ${n} > 3 )) && echo big')).toEqual([['n', 'arithmetic']]);
    expect(problems('if [[ ${n} -gt 3 ]]; then echo "${m}"; fi')).toEqual([['n', 'arithmetic']]);
    expect(problems('echo $[${n}+1]')).toEqual([['n', 'arithmetic']]);
  });

  it('warns where a command reads the value again as code, or the value is the command', () => {
    expect(problems('eval "${x}"')).toEqual([['x', 'reevaluated']]);
    expect(problems('let n=${x}')).toEqual([['x', 'reevaluated']]);
    expect(problems('declare -i n=${x}')).toEqual([['x', 'reevaluated']]);
    expect(problems('. "${f}"')).toEqual([['f', 'reevaluated']]);
    expect(problems('bash -c "echo ${x}"')).toEqual([['x', 'reevaluated']]);
    expect(problems('${cmd} --flag')).toEqual([['cmd', 'command']]);
    expect(problems('echo a; ${cmd}')).toEqual([['cmd', 'command']]);
    expect(problems('X=1 ${cmd}')).toEqual([['cmd', 'command']]);
  });

  it.runIf(existsSync('/bin/bash'))(
    'warns about arithmetic because the hole is real: bash runs a[$(cmd)] found in a variable',
    () => {
      // why a warning, not a fix: no quoting keeps bash from evaluating a variable's content in
      // arithmetic; only checking the value (or computing it with an expression) does
      const dir = mkdtempSync(join(tmpdir(), 'meson-arith-'));
      try {
        const marker = join(dir, 'PWNED');
        const script = 'echo $(( ${MESON_V_0} + 1 ))';
        spawnSync('/bin/bash', ['-c', script], { env: { MESON_V_0: `a[$(touch ${marker})]` } });
        expect(existsSync(marker)).toBe(true);
        expect(problems('echo $(( ${n} + 1 ))')).toEqual([['n', 'arithmetic']]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('never throws, whatever the text', () => {
    for (const script of ["'${x}", '"${x}', '$((${x}', 'cat <<EOF\n${x}', '${', '`${x}', ')))${x}'])
      expect(() => scriptSpliceWarnings(script)).not.toThrow();
  });

  it('has nothing to say about the shipped examples', () => {
    for (const name of [
      'ab-test-orchestration',
      'backfill-daily-metrics',
      'data-quality-gate',
      'hello-meson',
      'model-release-canary',
      'model-training-hpo',
      'wait-for-partition',
    ]) {
      const text = readFileSync(new URL(`../../examples/${name}.yaml`, import.meta.url), 'utf8');
      const scripts = [
        ...JSON.stringify(parseAllDocuments(text).map((d) => d.toJS())).matchAll(
          /"script":("(?:[^"\\]|\\.)*")/g,
        ),
      ];
      expect(scripts.length, name).toBeGreaterThan(0);
      for (const m of scripts) expect(problems(JSON.parse(m[1] as string)), name).toEqual([]);
    }
  });
});

describe('interpreterCodeIndex', () => {
  it('finds the program text of an interpreter', () => {
    expect(interpreterCodeIndex(['python3', '-c', 'print(1)'])).toBe(2);
    expect(interpreterCodeIndex(['/usr/bin/node', '-e', 'x'])).toBe(2);
    expect(interpreterCodeIndex(['perl', '-w', '-e', 'x'])).toBe(3);
    expect(interpreterCodeIndex(['python', '-m', 'job'])).toBe(-1);
    expect(interpreterCodeIndex(['java', '-c', 'x'])).toBe(-1);
  });
});
