// The executor program: `node executors/executor.ts ATTEMPT_DIR` runs one attempt of one step
// and records everything in ATTEMPT_DIR (see executors/protocol.ts and docs/executor-protocol.md).
// The launcher starts it detached, in its own process group, so that it outlives the server:
// a restarted server adopts it by reading status.json instead of running the step again.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, cpSync, openSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  claimAttempt,
  type ExecutorStatus,
  type ExecutorStep,
  LINKS_FILE,
  OUTPUTS_FILE,
  parseLinks,
  parseOutputs,
  STDERR_FILE,
  STDOUT_FILE,
  TASK_FILE,
  type TaskFile,
  writeStatus,
} from './protocol.ts';
import { argumentProblem, paramEnvMaxBytes, parameterEnvironment, stepEnvironment } from './safety.ts';

/** How long a killed step may take to exit after SIGTERM before it gets SIGKILL. */
const KILL_GRACE_MS = 10_000;

export class StepSetupError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'StepSetupError';
    this.code = code;
  }
}

/** A command to run for the step, or an in-process action (copy, noop). */
export type StepPlan =
  | { kind: 'command'; command: string; args: string[] }
  | { kind: 'copy'; from: string; to: string }
  | { kind: 'noop' };

export interface PlanContext {
  /** The attempt directory (mounted into containers so MESON_OUTPUTS works there too). */
  dir: string;
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Finds a working container runtime; injectable for tests. */
  containerRuntime?: () => string | undefined;
  which?: (name: string) => string | undefined;
}

export function which(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The first of docker/podman that is installed AND answers `info` (a client without engine does not count). */
export function detectContainerRuntime(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const rt of ['docker', 'podman']) {
    if (!which(rt, env)) continue;
    const res = spawnSync(rt, ['info'], { stdio: 'ignore', timeout: 10_000, env });
    if (res.status === 0) return rt;
  }
  return undefined;
}

function localPath(uri: string, cwd: string, field: string): string {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(uri)?.[1];
  if (scheme === undefined) return resolve(cwd, uri);
  if (scheme === 'file') return fileURLToPath(uri);
  throw new StepSetupError(
    'EXECUTOR_COPY_SCHEME',
    `copy.${field}: the local executor copies only local paths and file:// URIs, not ${scheme}://`,
  );
}

/** Decides how to run the step; throws StepSetupError when it cannot run here. */
export function planStep(step: ExecutorStep, ctx: PlanContext): StepPlan {
  const find = ctx.which ?? ((n: string) => which(n, ctx.env));
  const bad = argumentProblem(step);
  if (bad) throw new StepSetupError('EXECUTOR_BAD_ARGUMENT', `${bad.field}: ${bad.message}`);
  switch (step.type) {
    case 'noop':
      return { kind: 'noop' };
    case 'shell': {
      if (!step.shell) throw new StepSetupError('EXECUTOR_BAD_STEP', 'shell step without a shell block');
      return { kind: 'command', command: '/bin/sh', args: ['-c', step.shell.script] };
    }
    case 'copy': {
      if (!step.copy) throw new StepSetupError('EXECUTOR_BAD_STEP', 'copy step without a copy block');
      return {
        kind: 'copy',
        from: localPath(step.copy.from, ctx.cwd, 'from'),
        to: localPath(step.copy.to, ctx.cwd, 'to'),
      };
    }
    case 'container': {
      const c = step.container;
      if (!c) throw new StepSetupError('EXECUTOR_BAD_STEP', 'container step without a container block');
      const runtime = (ctx.containerRuntime ?? (() => detectContainerRuntime(ctx.env)))();
      if (!runtime) {
        throw new StepSetupError(
          'EXECUTOR_NO_CONTAINER_RUNTIME',
          'container steps need a working container runtime on this machine: neither `docker info` nor `podman info` succeeded',
        );
      }
      // Every value is glued to its option (`--env=K=V`, `--entrypoint=X`) and the image was
      // checked (argumentProblem): no value can be read by the runtime as an option of its own.
      const args = ['run', '--rm', '-v', `${ctx.dir}:${ctx.dir}`];
      args.push(
        `--env=MESON_OUTPUTS=${join(ctx.dir, OUTPUTS_FILE)}`,
        `--env=MESON_LINKS=${join(ctx.dir, LINKS_FILE)}`,
      );
      const params = parameterEnvironment(step.parameters, paramEnvMaxBytes(ctx.env));
      for (const [k, v] of Object.entries(params)) args.push(`--env=${k}=${v}`);
      for (const e of c.env ?? []) args.push(`--env=${e.name}=${e.value}`);
      const [entrypoint, ...rest] = c.command ?? [];
      if (entrypoint !== undefined) args.push(`--entrypoint=${entrypoint}`);
      args.push(c.image, ...rest, ...(c.args ?? []));
      return { kind: 'command', command: runtime, args };
    }
    case 'spark': {
      const s = step.spark;
      if (!s) throw new StepSetupError('EXECUTOR_BAD_STEP', 'spark step without a spark block');
      const submit = find('spark-submit');
      if (!submit) {
        throw new StepSetupError(
          'EXECUTOR_NO_SPARK',
          'spark steps need `spark-submit` on the PATH of the server',
        );
      }
      const args: string[] = [];
      if (s.jobClass) args.push('--class', s.jobClass);
      for (const [k, v] of Object.entries(s.conf ?? {})) args.push('--conf', `${k}=${v}`);
      if (s.driverMemory) args.push('--driver-memory', s.driverMemory);
      if (s.executorMemory) args.push('--executor-memory', s.executorMemory);
      if (s.executors !== undefined) args.push('--num-executors', String(s.executors));
      const app = s.mainApplication ?? ctx.env.MESON_SPARK_APPLICATION;
      if (!app) {
        throw new StepSetupError(
          'EXECUTOR_SPARK_NO_APPLICATION',
          `spark.jobClass ${s.jobClass} needs the application jar: set MESON_SPARK_APPLICATION for the server or use spark.mainApplication`,
        );
      }
      args.push(app, ...(s.args ?? []));
      return { kind: 'command', command: submit, args };
    }
    case 'subworkflow':
      throw new StepSetupError(
        'EXECUTOR_BAD_STEP',
        'subworkflow steps are run by the controller, not an executor',
      );
  }
}

function readOptional(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Runs the attempt in `dir`. Resolves when status.json holds a terminal phase (or the claim was lost). */
export async function runAttempt(
  dir: string,
  now: () => number = Date.now,
): Promise<ExecutorStatus | undefined> {
  const task = JSON.parse(readFileSync(join(dir, TASK_FILE), 'utf8')) as TaskFile;
  if (!claimAttempt(dir, `executor ${process.pid}`)) return undefined; // fenced by a recovering controller
  // handlers first: a kill may arrive as soon as status.json says Running
  let killedBy: NodeJS.Signals | undefined;
  let onKill: ((sig: NodeJS.Signals) => void) | undefined;
  const handle = (sig: NodeJS.Signals) => {
    killedBy = sig;
    onKill?.(sig);
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
  process.on('SIGHUP', () => {}); // the server's terminal going away must not kill the step
  const status: ExecutorStatus = {
    launchId: task.launchId,
    pid: process.pid,
    phase: 'Running',
    milestones: { queued: task.queuedAt, launched: task.launchedAt, running: now() },
  };
  writeStatus(dir, status);
  const cwd = task.cwd ?? process.cwd();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...task.env,
    MESON_OUTPUTS: join(dir, OUTPUTS_FILE),
    MESON_LINKS: join(dir, LINKS_FILE),
    MESON_RUN_ID: task.run,
    MESON_WORKFLOW: task.workflow,
    MESON_NAMESPACE: task.namespace,
    MESON_STEP_ID: task.instance,
    MESON_ATTEMPT: String(task.attempt),
    // MESON_PARAM_<name>, and the values a shell script refers to (MESON_V_<n>): docs/executor-protocol.md
    ...stepEnvironment(task.step, paramEnvMaxBytes(process.env)),
  };
  const finish = (patch: Partial<ExecutorStatus>): ExecutorStatus => {
    Object.assign(status, patch);
    status.milestones.finished = now();
    if (status.phase === 'Succeeded') {
      try {
        const outputs = readOptional(join(dir, OUTPUTS_FILE));
        if (outputs !== undefined) status.outputs = parseOutputs(outputs);
        const links = readOptional(join(dir, LINKS_FILE));
        if (links !== undefined) status.links = parseLinks(links);
      } catch (err) {
        status.phase = 'Failed';
        status.message = `the step succeeded but its output files are invalid: ${(err as Error).message}`;
      }
    }
    writeStatus(dir, status);
    return status;
  };

  let plan: StepPlan;
  try {
    plan = planStep(task.step, { dir, cwd, env });
  } catch (err) {
    // the stable code (EXECUTOR_NO_SPARK, ...) leads, as docs/executor-protocol.md promises
    const code = err instanceof StepSetupError ? `${err.code}: ` : '';
    return finish({ phase: 'Failed', message: `${code}${(err as Error).message}` });
  }
  if (killedBy)
    return finish({ phase: 'Failed', message: `killed (${killedBy}) before it started`, signal: killedBy });
  if (plan.kind === 'noop') return finish({ phase: 'Succeeded', exitCode: 0 });
  if (plan.kind === 'copy') {
    try {
      cpSync(plan.from, plan.to, { recursive: true });
      return finish({ phase: 'Succeeded', exitCode: 0 });
    } catch (err) {
      return finish({ phase: 'Failed', message: `copy failed: ${(err as Error).message}` });
    }
  }
  const out = openSync(join(dir, STDOUT_FILE), 'a');
  const errFd = openSync(join(dir, STDERR_FILE), 'a');
  return new Promise<ExecutorStatus>((done) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(plan.command, plan.args, { cwd, env, stdio: ['ignore', out, errFd] });
    } catch (err) {
      // e.g. an argument or environment value the OS cannot carry
      done(
        finish({ phase: 'Failed', message: `could not start ${plan.command}: ${(err as Error).message}` }),
      );
      return;
    }
    onKill = () => {
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS).unref();
    };
    child.on('spawn', () => {
      status.childPid = child.pid;
      writeStatus(dir, status);
    });
    child.on('error', (err) => {
      done(finish({ phase: 'Failed', message: `could not start ${plan.command}: ${err.message}` }));
    });
    child.on('exit', (code, signal) => {
      if (killedBy) {
        done(finish({ phase: 'Failed', message: `killed (${killedBy})`, signal: signal ?? killedBy }));
      } else if (code === 0) {
        done(finish({ phase: 'Succeeded', exitCode: 0 }));
      } else if (code !== null) {
        done(finish({ phase: 'Failed', exitCode: code, message: `exit code ${code}` }));
      } else {
        // the step's process group got the signal too, possibly before our own handler ran
        done(finish({ phase: 'Failed', signal: signal ?? undefined, message: `killed (${signal})` }));
      }
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = process.argv[2];
  if (!dir) {
    process.stderr.write('usage: executor.ts ATTEMPT_DIR\n');
    process.exit(2);
  }
  try {
    await runAttempt(resolve(dir));
    process.exit(0);
  } catch (err) {
    process.stderr.write(`executor: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  }
}
