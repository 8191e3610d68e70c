// What a container's process gets from the kubelet, for tests that assert on what a step sees
// rather than on the Pod's bytes: the kubelet expands $(NAME) in command, args and env values.
import type { V1Container } from '@kubernetes/client-node';

/**
 * The kubelet's expansion of one string (a port of Kubernetes'
 * third_party/forked/golang/expansion Expand with MappingFuncFor): `$$` gives `$`, `$(NAME)`
 * gives NAME's value when NAME is defined, else stays as written; any other `$x` stays.
 */
export function kubeletExpand(input: string, vars: Record<string, string>): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== '$' || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let advance = 1;
    if (rest[0] === '$') out += '$';
    else if (rest[0] === '(') {
      const close = rest.indexOf(')', 1);
      if (close === -1) out += '$(';
      else {
        const name = rest.slice(1, close);
        out += Object.hasOwn(vars, name) ? vars[name] : `$(${name})`;
        advance = close + 1;
      }
    } else out += `$${rest[0]}`;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

/**
 * The command, args and environment the container's process starts with: each env value
 * expanded against the variables before it, command and args against all of them (values from
 * `valueFrom` read as `<valueFrom>`).
 */
export function asKubeletRuns(c: V1Container): {
  command: string[] | undefined;
  args: string[] | undefined;
  env: Record<string, string>;
} {
  const env: Record<string, string> = {};
  for (const e of c.env ?? [])
    env[e.name] = e.value === undefined ? '<valueFrom>' : kubeletExpand(e.value, env);
  return {
    command: c.command?.map((s) => kubeletExpand(s, env)),
    args: c.args?.map((s) => kubeletExpand(s, env)),
    env,
  };
}
