// The environment a step runs with. Steps do NOT inherit the server's environment (which holds
// MESON_API_TOKEN, cloud credentials, ...): a step gets a small documented set, the variables
// the server's operator lets through (--step-env-passthrough NAME), and the MESON_* protocol
// variables. See docs/executor-protocol.md ("What a step sees").

/** Taken from the server's environment for every step (when set there). */
export const STEP_ENV_BASE = ['PATH', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ'] as const;

/** PATH when the server has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * What the container runtime's client (docker, podman) needs to reach its engine and registry
 * credentials. The client gets them; the container does not (it gets only `-e` variables).
 */
export const CONTAINER_CLIENT_ENV = [
  'HOME',
  'DOCKER_HOST',
  'DOCKER_CONFIG',
  'DOCKER_CONTEXT',
  'DOCKER_CERT_PATH',
  'DOCKER_TLS_VERIFY',
  'XDG_RUNTIME_DIR',
  'XDG_CONFIG_HOME',
  'CONTAINER_HOST',
  'CONTAINERS_CONF',
  'REGISTRY_AUTH_FILE',
] as const;

/** What spark-submit needs to find Java, Spark and the cluster's configuration. */
export const SPARK_CLIENT_ENV = [
  'JAVA_HOME',
  'SPARK_HOME',
  'SPARK_CONF_DIR',
  'HADOOP_HOME',
  'HADOOP_CONF_DIR',
  'YARN_CONF_DIR',
] as const;

/**
 * What the executor's object store client reads for copy steps to and from s3:// (the AWS SDK's
 * standard configuration, set by the admin). Only the executor of a copy step gets them, and the
 * copy runs inside it: no step process ever sees them (unless passed through by name).
 */
export const OBJECT_STORE_CLIENT_ENV = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_REGION',
  'AWS_DEFAULT_REGION',
  'AWS_ENDPOINT_URL',
  'AWS_ENDPOINT_URL_S3',
  'AWS_PROFILE',
  'AWS_CONFIG_FILE',
  'AWS_SHARED_CREDENTIALS_FILE',
  'AWS_WEB_IDENTITY_TOKEN_FILE',
  'AWS_ROLE_ARN',
  'AWS_ROLE_SESSION_NAME',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_CA_BUNDLE',
  'AWS_EC2_METADATA_DISABLED',
  'AWS_REQUEST_CHECKSUM_CALCULATION',
  'AWS_RESPONSE_CHECKSUM_VALIDATION',
  'MESON_S3_FORCE_PATH_STYLE',
] as const;

/**
 * The executor's own settings, read from its environment (not given to steps): the application
 * of spark steps that name only a jobClass, the bound of one MESON_PARAM_ value.
 */
export const EXECUTOR_OWN_ENV = ['MESON_SPARK_APPLICATION', 'MESON_PARAM_ENV_MAX_BYTES'] as const;

function pick(env: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = env[n];
    if (v !== undefined) out[n] = v;
  }
  return out;
}

/** A variable name the operator may let through: a plain shell name, and not a MESON_ protocol one. */
export function checkPassthroughName(name: string): string | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return `"${name}" is not a variable name`;
  if (/^MESON_/.test(name)) return `"${name}": MESON_* variables are set by the executor`;
  return undefined;
}

/**
 * The environment of the executor process (started by the launcher): only what it needs to
 * start the step's command (with `objectStore`, a copy step's: the store's configuration), plus
 * the operator's passthrough names. Secrets of the server are not
 * in it, so they are not in /proc/<executor>/environ either.
 */
export function executorEnvironment(
  serverEnv: NodeJS.ProcessEnv,
  passthrough: readonly string[] = [],
  opts: { objectStore?: boolean } = {},
): Record<string, string> {
  return pick(serverEnv, [
    ...STEP_ENV_BASE,
    ...CONTAINER_CLIENT_ENV,
    ...SPARK_CLIENT_ENV,
    ...EXECUTOR_OWN_ENV,
    ...(opts.objectStore ? OBJECT_STORE_CLIENT_ENV : []),
    ...passthrough,
  ]);
}

export type StepProcessKind = 'shell' | 'container' | 'spark';

/**
 * The environment of the step's process, built from nothing: the base names, HOME (the step's
 * working directory), what the process kind needs (container client, spark-submit), the
 * operator's passthrough names and extra variables, and the protocol variables last (a step
 * cannot be told another attempt's MESON_OUTPUTS).
 */
export function cleanStepEnvironment(
  kind: StepProcessKind,
  from: NodeJS.ProcessEnv,
  opts: {
    workDir: string;
    passthrough?: readonly string[];
    extra?: Record<string, string>;
    protocol: Record<string, string>;
  },
): Record<string, string> {
  return {
    PATH: DEFAULT_PATH,
    ...pick(from, STEP_ENV_BASE),
    HOME: opts.workDir,
    ...(kind === 'container' ? pick(from, CONTAINER_CLIENT_ENV) : {}),
    ...(kind === 'spark' ? pick(from, SPARK_CLIENT_ENV) : {}),
    ...pick(from, opts.passthrough ?? []),
    ...(opts.extra ?? {}),
    ...opts.protocol,
  };
}
