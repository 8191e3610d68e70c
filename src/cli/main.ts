// `mesonctl`: the command-line entry point. Each command lives in its own module under
// src/cli/commands and is loaded lazily so that `mesonctl eval` does not pay for the server.
import { runCli } from './cli.ts';

const code = await runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  stdin: process.stdin,
  cwd: process.cwd(),
  env: process.env,
});
if (code !== undefined) process.exitCode = code;
