// The smallest useful workflow: two parameters, one shell step that reports an output
// parameter, and a no-op join. Runs anywhere with /bin/sh:
//   mesonctl run examples/hello-meson.yaml --param who=Meson
import { Noop, Parameter, Shell, Workflow } from '../src/dsl/index.ts';

export default Workflow({
  id: 'hello-meson',
  description: 'Say hello and report how many characters were said',
  parameters: [
    Parameter.string('who', 'world'),
    Parameter.long({ name: 'dateint', expression: 'tsToDateInt(RUN_TS)' }),
  ],
  definition: Shell('greet', [
    'set -eu',
    'greeting="Hello, ${who}! Today is ${dateint}."',
    'echo "$greeting"',
    // key=value lines in $MESON_OUTPUTS become steps.greet.outputs.<key> (values parsed as JSON)
    'echo "length=$(printf %s "$greeting" | wc -c | tr -d " ")" >> "$MESON_OUTPUTS"',
  ]).sequence(Noop('done')),
});
