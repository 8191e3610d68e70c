// The executor program inside a step Pod (the Kubernetes launcher's shell, spark and copy steps):
// `meson-executor` in the executor image. It reads its task from MESON_TASK (TaskFile JSON), runs
// it with the same code as the local executor (runAttempt) in a fresh attempt directory under
// MESON_WORK_DIR, sends the step's stdout/stderr to the container's own (so the Pod's logs are
// the step's logs), and reports outputs and links through the container's termination message:
//
//   {"outputs": {...}, "links": [{"name", "url"}], "message": "..."}
//
// Kubernetes keeps at most 4096 bytes of a termination message. Past that the step fails with a
// message saying so (a truncated envelope would lose outputs silently). The exit code is the
// step's (1 when it failed without one), so the Pod's phase is the step's.
//
// The same program runs a step as a Mesos task (src/launchers/mesos.ts): the envelope goes to the
// file MESON_TERMINATION_MESSAGE_PATH names in the task's sandbox (relative paths are the
// sandbox's), bounded by MESON_RESULT_MAX_BYTES instead of Kubernetes' 4096 bytes.
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAttempt } from './executor.ts';
import { type ExecutorStatus, STDERR_FILE, STDOUT_FILE, TASK_FILE, type TaskFile } from './protocol.ts';

export const TERMINATION_MESSAGE_LIMIT = 4096;
/** The largest MESON_RESULT_MAX_BYTES honoured: the `data` of a Mesos status update (1 MiB). */
export const RESULT_MAX_BYTES_CAP = 1024 * 1024;

/** The termination message for a finished attempt, within the limit (or a failure saying it is not). */
export function envelopeFor(
  status: ExecutorStatus | undefined,
  limit: number = TERMINATION_MESSAGE_LIMIT,
  where = 'a termination message',
  keeper = 'Kubernetes keeps',
): { text: string; ok: boolean } {
  if (!status)
    return { text: JSON.stringify({ message: 'the attempt was claimed by someone else' }), ok: false };
  const env: Record<string, unknown> = {};
  if (status.outputs && Object.keys(status.outputs).length > 0) env.outputs = status.outputs;
  if (status.links && status.links.length > 0) env.links = status.links;
  if (status.phase !== 'Succeeded' && status.message) env.message = status.message;
  const text = JSON.stringify(env);
  const size = Buffer.byteLength(text);
  if (size <= limit) return { text, ok: status.phase === 'Succeeded' };
  const message =
    `the step's outputs and links take ${size} bytes as ${where}, over the ` +
    `${limit}-byte limit ${keeper}: write large results to storage and output their location`;
  return { text: JSON.stringify({ message }), ok: false };
}

export interface PodTaskOptions {
  env: NodeJS.ProcessEnv;
  /** Default /dev/termination-log. */
  terminationMessagePath?: string;
}

/** Runs the Pod's task; returns the exit code for the container. */
export async function runPodTask(opts: PodTaskOptions): Promise<number> {
  const out =
    opts.terminationMessagePath ?? opts.env.MESON_TERMINATION_MESSAGE_PATH ?? '/dev/termination-log';
  const fail = (message: string): number => {
    writeFileSync(out, JSON.stringify({ message }));
    return 1;
  };
  const raw = opts.env.MESON_TASK;
  if (!raw) return fail('MESON_TASK is not set: this program runs inside a step Pod');
  let task: TaskFile;
  try {
    task = JSON.parse(raw) as TaskFile;
  } catch (err) {
    return fail(`MESON_TASK: expected the task as JSON: ${(err as Error).message}`);
  }
  // absolute: the step runs in another directory and MESON_OUTPUTS must still reach the attempt's
  const root = resolve(opts.env.MESON_WORK_DIR ?? task.cwd ?? '/meson/work');
  mkdirSync(root, { recursive: true });
  const dir = mkdtempSync(join(root, 'attempt-'));
  // the step writes to the container's stdout/stderr: they are the Pod's logs
  const stop = [connectOutput(dir, STDOUT_FILE, 1), connectOutput(dir, STDERR_FILE, 2)];
  // MESON_PARAM_<name> travel as the container's own variables (the task leaves the parameters
  // out to stay small): hand them to the step, whose environment is otherwise clean
  const params = Object.fromEntries(
    Object.entries(opts.env).filter(
      (e): e is [string, string] => e[0].startsWith('MESON_PARAM_') && typeof e[1] === 'string',
    ),
  );
  const env = { ...params, ...task.env };
  writeFileSync(join(dir, TASK_FILE), JSON.stringify({ ...task, env, cwd: task.cwd ?? root }));
  let status: ExecutorStatus | undefined;
  try {
    status = await runAttempt(dir);
  } finally {
    for (const s of stop) s();
  }
  const { text, ok } = resultLimit(opts.env)
    ? envelopeFor(
        status,
        resultLimit(opts.env),
        'a Mesos status update',
        'this launcher sets (MESON_RESULT_MAX_BYTES)',
      )
    : envelopeFor(status);
  writeFileSync(out, text);
  if (ok) return 0;
  return status?.exitCode && status.exitCode > 0 ? status.exitCode : 1;
}

/** MESON_RESULT_MAX_BYTES when it is a positive integer (capped at RESULT_MAX_BYTES_CAP), else 0. */
export function resultLimit(env: NodeJS.ProcessEnv): number {
  const raw = env.MESON_RESULT_MAX_BYTES;
  if (raw === undefined || !/^[1-9][0-9]{0,8}$/.test(raw)) return 0;
  return Math.min(Number(raw), RESULT_MAX_BYTES_CAP);
}

/**
 * Makes `dir/name` reach file descriptor `fd`: a symlink to /proc/self/fd/N where that can be
 * opened (a pipe, FIFO, file or terminal: what container runtimes give), else a file whose new
 * bytes are copied to `fd` every 200 ms and at the end. Returns the function that ends it.
 */
function connectOutput(dir: string, name: string, fd: 1 | 2): () => void {
  const path = join(dir, name);
  try {
    closeSync(openSync(`/proc/self/fd/${fd}`, 'a'));
    symlinkSync(`/proc/self/fd/${fd}`, path);
    return () => {};
  } catch {
    // a socket (or no /proc): follow the file instead
  }
  writeFileSync(path, '');
  const file = openSync(path, 'r');
  const buf = Buffer.alloc(64 * 1024);
  let pos = 0;
  const drain = () => {
    for (;;) {
      const n = readSync(file, buf, 0, buf.length, pos);
      if (n <= 0) return;
      pos += n;
      writeSync(fd, buf, 0, n);
    }
  };
  const timer = setInterval(drain, 200);
  return () => {
    clearInterval(timer);
    drain();
    closeSync(file);
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exit(await runPodTask({ env: process.env }));
  } catch (err) {
    process.stderr.write(`executor: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  }
}
