// The kubelet expands `$(NAME)` in a container's command, args and env values, NAME being a
// variable defined earlier in the container's env, and turns `$$` into `$`
// (k8s.io/kubernetes third_party/forked/golang/expansion). Meson passes values byte for byte in
// every mode, and a value a run starter supplies must never read another variable of the
// container (a secret, the step's task): every string the operator puts in those fields goes
// through kubeletLiteral, which doubles each `$` so the container sees exactly the string written.
import type { V1Container } from '@kubernetes/client-node';

/** `s` escaped so the kubelet's expansion gives back `s` exactly. Pure. */
export function kubeletLiteral(s: string): string {
  return s.includes('$') ? s.replaceAll('$', () => '$$') : s;
}

/**
 * `container` with its command, args and literal env values escaped (kubeletLiteral): call it
 * once, on a container built from literal strings. Values from `valueFrom` are left alone (the
 * kubelet does not expand them).
 */
export function literalContainer(container: V1Container): V1Container {
  return {
    ...container,
    ...(container.command ? { command: container.command.map(kubeletLiteral) } : {}),
    ...(container.args ? { args: container.args.map(kubeletLiteral) } : {}),
    ...(container.env
      ? {
          env: container.env.map((e) =>
            e.value === undefined ? e : { ...e, value: kubeletLiteral(e.value) },
          ),
        }
      : {}),
  };
}
