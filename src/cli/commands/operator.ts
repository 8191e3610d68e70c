// `mesonctl operator`: the Kubernetes operator. Its controller is src/controller (the same one
// the standalone server runs); what it still lacks is the Kubernetes adapters behind the store,
// offer-source and launcher ports. Until they exist this command says so instead of pretending.
import type { Command } from '../cli.ts';

export const operatorCommand: Command = async (_args, io) => {
  io.stderr(
    'mesonctl operator: not yet available: it needs the Kubernetes store adapter (src/store port on the\n' +
      'Kubernetes API) and the Pod launcher. Use `mesonctl server` for the standalone mode.\n',
  );
  return 2;
};
