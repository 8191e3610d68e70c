// The executor program: `node executors/executor.ts ATTEMPT_DIR` runs one attempt of one step
// and records everything in ATTEMPT_DIR (see executors/protocol.ts and docs/executor-protocol.md).
// The launcher starts it detached, in its own process group, so that it outlives the server:
// a restarted server adopts it by reading status.json instead of running the step again.
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, openSync, readFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { confineCopyEnd, confinedCopy, realRoots } from './copy.ts';
import { cleanStepEnvironment } from './env.ts';
import { StepSetupError } from './errors.ts';
import {
  checkLinks,
  checkOutputs,
  DEFAULT_COPY_LIMITS,
  readStepFile,
  StepFileError,
  type StepLimits,
  truncateMessage,
  withLimits,
} from './limits.ts';
import { groupAlive, processStartTime, signalGroup } from './process.ts';
import {
  type ContainerRef,
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
import { isS3Uri, parseS3Root, type S3Location } from './s3-uri.ts';
import { argumentProblem, paramEnvMaxBytes, parameterEnvironment, stepEnvironment } from './safety.ts';
import {
  ownedSubmitArgs,
  type SparkSubmitSettings,
  sparkOwnershipOf,
  sparkOwnershipProblem,
} from './spark.ts';

export { StepSetupError };

/** How long a killed step may take to exit after SIGTERM before it gets SIGKILL. */
const KILL_GRACE_MS = 10_000;

/** A command to run for the step, or an in-process action (copy, noop). */
export type StepPlan =
  | { kind: 'command'; command: string; args: string[]; container?: ContainerRef }
  /**
   * `from`/`to`: a confined local real path, or a checked `s3://bucket/key`; `intoDirectory`: the
   * step's `to` ended with "/" (an object is copied into that local directory).
   */
  | { kind: 'copy'; from: string; to: string; intoDirectory?: true }
  | { kind: 'noop' };

export interface PlanContext {
  /** The attempt directory (mounted into containers so MESON_OUTPUTS works there too). */
  dir: string;
  cwd: string;
  /** The executor's environment: where the container runtime and spark-submit are looked up. */
  env: NodeJS.ProcessEnv;
  /** Variables the operator lets through to steps: passed into containers by name (`-e NAME`). */
  passthrough?: readonly string[];
  /** Real paths of the copy roots (see copy.ts); the first is the base of relative paths. */
  copyRoots?: readonly string[];
  /** Object store copy roots (`s3://bucket/prefix/`): where s3:// URIs of copy steps may point. */
  s3CopyRoots?: readonly S3Location[];
  /** The name container steps run under (so a dead executor's container can be removed). */
  containerName?: string;
  /** Finds a working container runtime; injectable for tests. */
  containerRuntime?: () => string | undefined;
  which?: (name: string) => string | undefined;
  /** Spark on Kubernetes (TaskFile.sparkSubmit): the settings the operator owns. */
  sparkSubmit?: SparkSubmitSettings;
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
      const roots = ctx.copyRoots ?? [];
      const s3Roots = ctx.s3CopyRoots ?? [];
      const from = confineCopyEnd(step.copy.from, roots, s3Roots, 'from');
      const to = confineCopyEnd(step.copy.to, roots, s3Roots, 'to');
      const intoDirectory = isS3Uri(from) && !isS3Uri(to) && /[/\\]$/.test(step.copy.to);
      return { kind: 'copy', from, to, ...(intoDirectory ? { intoDirectory: true as const } : {}) };
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
      // named: killing the client (`docker run`) with SIGKILL does not stop the container
      if (ctx.containerName) args.push(`--name=${ctx.containerName}`);
      args.push(
        `--env=MESON_OUTPUTS=${join(ctx.dir, OUTPUTS_FILE)}`,
        `--env=MESON_LINKS=${join(ctx.dir, LINKS_FILE)}`,
      );
      const params = parameterEnvironment(step.parameters, paramEnvMaxBytes(ctx.env));
      for (const [k, v] of Object.entries(params)) args.push(`--env=${k}=${v}`);
      // by name: the value comes from the client's environment, not from its (visible) argv
      for (const name of ctx.passthrough ?? []) if (ctx.env[name] !== undefined) args.push(`--env=${name}`);
      for (const e of c.env ?? []) args.push(`--env=${e.name}=${e.value}`);
      const [entrypoint, ...rest] = c.command ?? [];
      if (entrypoint !== undefined) args.push(`--entrypoint=${entrypoint}`);
      args.push(c.image, ...rest, ...(c.args ?? []));
      return {
        kind: 'command',
        command: runtime,
        args,
        ...(ctx.containerName ? { container: { runtime, name: ctx.containerName } } : {}),
      };
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
      let owned: { before: string[]; after: string[] } = { before: [], after: [] };
      if (ctx.sparkSubmit) {
        // checked at admission and by the launcher already: again here, on what actually runs
        const taken = sparkOwnershipProblem(s, sparkOwnershipOf(ctx.sparkSubmit));
        if (taken) throw new StepSetupError('EXECUTOR_SPARK_OWNED', `${taken.field}: ${taken.message}`);
        try {
          owned = ownedSubmitArgs(ctx.sparkSubmit, ctx.env);
        } catch (err) {
          throw new StepSetupError('EXECUTOR_SPARK_NO_CLUSTER', (err as Error).message, { cause: err });
        }
      }
      const args: string[] = [...owned.before];
      if (s.jobClass) args.push('--class', s.jobClass);
      for (const [k, v] of Object.entries(s.conf ?? {})) args.push('--conf', `${k}=${v}`);
      args.push(...owned.after);
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

/**
 * Starts the step's command in its own process group, behind a gate: `sh` waits for a line on
 * fd 3 before it execs the command. The executor records the group (pid and start time) in
 * status.json first, then opens the gate; an executor killed in between closes the pipe, and the
 * gate exits without running anything. So a launcher that finds the executor dead always knows
 * which group to kill: the step never runs unrecorded.
 */
const GATE = 'IFS= read -r go <&3 && [ "$go" = go ] || exit 125; exec 3<&-; exec "$@"';

/** How long the executor waits for a finished step's leftover processes to die (after SIGKILL). */
const GROUP_EXIT_WAIT_MS = 10_000;

async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() > end) return false;
    signalGroup(pgid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/** The container name of a launch: `meson-<launch id>` (what containerRef accepts back). */
export function containerName(launchId: string): string {
  return `meson-${launchId.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 100)}`;
}

/** Removes a step's container (`docker rm -f`), whatever state it is in; resolves when done. */
export function removeContainer(c: ContainerRef, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((done) => {
    const rm = spawn(c.runtime, ['rm', '-f', c.name], { stdio: 'ignore', env, timeout: 60_000 });
    rm.on('error', () => done());
    rm.on('exit', () => done());
  });
}

/** Reads one of the step's files bounded, then parses and checks it; throws StepFileError. */
function readStepReport<T>(
  file: string,
  maxBytes: number,
  what: Parameters<typeof readStepFile>[2],
  parse: (text: string) => T,
  check: (value: T) => void,
): T | undefined {
  const text = readStepFile(file, maxBytes, what);
  if (text === undefined) return undefined;
  let value: T;
  try {
    value = parse(text);
  } catch (err) {
    throw new StepFileError(what.invalid, (err as Error).message, { cause: err });
  }
  check(value);
  return value;
}

/** Reads, parses and checks the step's outputs and links files; throws StepFileError. */
export function readStepResults(dir: string, limits: StepLimits): Pick<ExecutorStatus, 'outputs' | 'links'> {
  const outputs = readStepReport(
    join(dir, OUTPUTS_FILE),
    limits.outputsBytes,
    {
      label: 'the outputs file (MESON_OUTPUTS)',
      limit: 'outputsBytes',
      tooLarge: 'EXECUTOR_OUTPUTS_TOO_LARGE',
      invalid: 'EXECUTOR_OUTPUTS_INVALID',
    },
    parseOutputs,
    (o) => checkOutputs(o, limits),
  );
  const links = readStepReport(
    join(dir, LINKS_FILE),
    limits.linksBytes,
    {
      label: 'the links file (MESON_LINKS)',
      limit: 'linksBytes',
      tooLarge: 'EXECUTOR_LINKS_TOO_LARGE',
      invalid: 'EXECUTOR_LINKS_INVALID',
    },
    parseLinks,
    (l) => checkLinks(l, limits),
  );
  return { ...(outputs ? { outputs } : {}), ...(links ? { links } : {}) };
}

/**
 * The copy roots of a task: its local ones as real paths (the first, the base of relative paths,
 * created if missing; the step's directory when the task names none) and its object store ones.
 */
function copyRootsOf(task: TaskFile, cwd: string): { copyRoots: string[]; s3CopyRoots: S3Location[] } {
  const all = task.copyRoots ?? [];
  const local = all.filter((r) => !isS3Uri(r));
  return {
    copyRoots: realRoots(local.length > 0 ? local : [cwd]),
    s3CopyRoots: all.filter(isS3Uri).map((r) => parseS3Root(r)),
  };
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
  const limits = withLimits(task.limits);
  const status: ExecutorStatus = {
    launchId: task.launchId,
    pid: process.pid,
    phase: 'Running',
    milestones: { queued: task.queuedAt, launched: task.launchedAt, running: now() },
  };
  writeStatus(dir, status);
  // the step's own directory (and HOME), unless the launcher names a shared one (mesonctl run)
  const cwd = task.cwd ?? join(dir, 'work');
  const finish = (patch: Partial<ExecutorStatus>): ExecutorStatus => {
    Object.assign(status, patch);
    status.milestones.finished = now();
    if (status.phase === 'Succeeded') {
      try {
        Object.assign(status, readStepResults(dir, limits));
      } catch (err) {
        status.phase = 'Failed';
        const code = err instanceof StepFileError ? err.code : 'EXECUTOR_OUTPUTS_INVALID';
        status.message = `${code}: the step succeeded but ${(err as Error).message}`;
        delete status.outputs;
        delete status.links;
      }
    }
    if (status.message !== undefined) status.message = truncateMessage(status.message, limits.messageBytes);
    writeStatus(dir, status);
    return status;
  };

  let plan: StepPlan;
  try {
    mkdirSync(cwd, { recursive: true });
    plan = planStep(task.step, {
      dir,
      cwd,
      env: process.env,
      passthrough: task.envPassthrough ?? [],
      ...(task.step.type === 'copy' ? copyRootsOf(task, cwd) : {}),
      ...(task.sparkSubmit ? { sparkSubmit: task.sparkSubmit } : {}),
      containerName: containerName(task.launchId),
    });
  } catch (err) {
    // the stable code (EXECUTOR_NO_SPARK, ...) leads, as docs/executor-protocol.md promises
    const code = err instanceof StepSetupError ? `${err.code}: ` : '';
    return finish({ phase: 'Failed', message: `${code}${(err as Error).message}` });
  }
  if (killedBy)
    return finish({ phase: 'Failed', message: `killed (${killedBy}) before it started`, signal: killedBy });
  if (plan.kind === 'noop') return finish({ phase: 'Succeeded', exitCode: 0 });
  if (plan.kind === 'copy') {
    const roots = copyRootsOf(task, cwd).copyRoots;
    const abort = new AbortController();
    onKill = () => abort.abort();
    try {
      if (!isS3Uri(plan.from) && !isS3Uri(plan.to)) confinedCopy(plan.from, plan.to, roots);
      else {
        // loaded only here: the SDK would slow every other step's start
        const { copyEnd, copyWithStore, s3ClientFor } = await import('./copy-s3.ts');
        await copyWithStore(
          copyEnd(plan.from),
          copyEnd(plan.to),
          {
            client: s3ClientFor(process.env),
            roots,
            limits: { ...DEFAULT_COPY_LIMITS, ...task.copyLimits },
            signal: abort.signal,
          },
          plan.intoDirectory === true,
        );
      }
      return finish({ phase: 'Succeeded', exitCode: 0 });
    } catch (err) {
      if (killedBy)
        return finish({ phase: 'Failed', message: `killed (${killedBy}) while copying`, signal: killedBy });
      const code = err instanceof StepSetupError ? `${err.code}: ` : '';
      return finish({ phase: 'Failed', message: `${code}copy failed: ${(err as Error).message}` });
    }
  }
  const env = cleanStepEnvironment(
    task.step.type === 'spark' ? 'spark' : task.step.type === 'container' ? 'container' : 'shell',
    process.env,
    {
      workDir: cwd,
      passthrough: task.envPassthrough ?? [],
      ...(task.env ? { extra: task.env } : {}),
      protocol: {
        MESON_OUTPUTS: join(dir, OUTPUTS_FILE),
        MESON_LINKS: join(dir, LINKS_FILE),
        MESON_RUN_ID: task.run,
        MESON_WORKFLOW: task.workflow,
        MESON_NAMESPACE: task.namespace,
        MESON_STEP_ID: task.instance,
        MESON_ATTEMPT: String(task.attempt),
        // MESON_PARAM_<name>, and the values a shell script refers to (MESON_V_<n>): docs/executor-protocol.md
        ...stepEnvironment(task.step, paramEnvMaxBytes(process.env)),
      },
    },
  );
  const out = openSync(join(dir, STDOUT_FILE), 'a');
  const errFd = openSync(join(dir, STDERR_FILE), 'a');
  return new Promise<ExecutorStatus>((done) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn('/bin/sh', ['-c', GATE, 'meson-gate', plan.command, ...plan.args], {
        cwd,
        env,
        stdio: ['ignore', out, errFd, 'pipe'],
        detached: true, // its own process group: the whole step is killed, and nothing else
      });
    } catch (err) {
      // e.g. an argument or environment value the OS cannot carry
      done(
        finish({ phase: 'Failed', message: `could not start ${plan.command}: ${(err as Error).message}` }),
      );
      return;
    }
    const pgid = child.pid;
    onKill = () => {
      if (pgid === undefined) return;
      signalGroup(pgid, 'SIGTERM');
      setTimeout(() => signalGroup(pgid, 'SIGKILL'), KILL_GRACE_MS).unref();
    };
    if (pgid !== undefined) {
      status.childPid = pgid;
      if (plan.container) status.container = plan.container;
      const started = processStartTime(pgid);
      if (started !== undefined) status.childStartTime = started;
      writeStatus(dir, status); // recorded before the gate opens
      const gate = child.stdio[3] as Writable | null;
      gate?.on('error', () => {}); // the child died early: its exit says how
      gate?.end('go\n');
      if (killedBy) onKill(killedBy);
    }
    let settled = false;
    const settle = async (patch: Partial<ExecutorStatus>) => {
      if (settled) return; // 'error' and 'exit' may both come
      settled = true;
      // the step is over when its whole group is: leftovers (`cmd &`) must not outlive the attempt
      if (pgid !== undefined) {
        signalGroup(pgid, 'SIGKILL');
        await waitGroupGone(pgid, GROUP_EXIT_WAIT_MS);
      }
      if (plan.container) await removeContainer(plan.container, process.env);
      done(finish(patch));
    };
    child.on('error', (err) => {
      void settle({ phase: 'Failed', message: `could not start ${plan.command}: ${err.message}` });
    });
    child.on('exit', (code, signal) => {
      if (killedBy) {
        void settle({ phase: 'Failed', message: `killed (${killedBy})`, signal: signal ?? killedBy });
      } else if (code === 0) {
        void settle({ phase: 'Succeeded', exitCode: 0 });
      } else if (code !== null) {
        void settle({ phase: 'Failed', exitCode: code, message: `exit code ${code}` });
      } else {
        void settle({ phase: 'Failed', signal: signal ?? undefined, message: `killed (${signal})` });
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
