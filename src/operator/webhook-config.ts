// The ValidatingWebhookConfiguration that sends meson.dev writes to the operator's webhook. One
// function makes it (deploy/webhook/ is its output, and `mesonctl operator webhook-config`
// prints it with a CA bundle), so the manifest and the server never disagree on paths or rules.
import { stringify } from 'yaml';
import { WEBHOOK_PATH } from './webhook.ts';

export const WEBHOOK_CONFIGURATION_NAME = 'meson-operator';
export const DEFAULT_SERVICE = { namespace: 'meson-system', name: 'meson-operator-webhook', port: 443 };
/** The API server waits this long for an answer (max 30). */
export const WEBHOOK_TIMEOUT_SECONDS = 10;

export interface WebhookConfigOptions {
  /** PEM of the CA that signed the serving certificate (omitted: cert-manager's CA injector fills it). */
  caBundle?: string;
  /** Where the API server calls: a URL (outside the cluster, tests) or a Service (default). */
  url?: string;
  service?: { namespace: string; name: string; port?: number };
  /** Only these namespaces (the operator's --namespace); default every namespace. */
  namespaces?: string[];
  /** Object name; tests use their own. Default meson-operator. */
  name?: string;
  /** cert-manager Certificate (namespace/name) whose CA is injected when caBundle is not given. */
  certManagerCertificate?: string;
}

type FailurePolicy = 'Fail' | 'Ignore';

/**
 * Workflows and WorkflowRuns: Fail (a refusal the user sees now beats an object the controller
 * marks invalid later, and a run whose parameters nobody checked). DataArtifacts: Ignore (they are
 * announced by producers that must not stall while the operator restarts; the CRD schema still
 * checks their shape and the controller validates them again).
 */
const RULES: { name: string; resources: string[]; failurePolicy: FailurePolicy }[] = [
  { name: 'workflows.meson.dev', resources: ['workflows'], failurePolicy: 'Fail' },
  { name: 'workflowruns.meson.dev', resources: ['workflowruns'], failurePolicy: 'Fail' },
  { name: 'dataartifacts.meson.dev', resources: ['dataartifacts'], failurePolicy: 'Ignore' },
];

export function webhookConfiguration(options: WebhookConfigOptions = {}): Record<string, unknown> {
  const service = options.service ?? DEFAULT_SERVICE;
  const clientConfig: Record<string, unknown> = options.url
    ? { url: `${options.url.replace(/\/$/, '')}${WEBHOOK_PATH}` }
    : {
        service: {
          namespace: service.namespace,
          name: service.name,
          path: WEBHOOK_PATH,
          port: service.port ?? 443,
        },
      };
  if (options.caBundle !== undefined)
    clientConfig.caBundle = Buffer.from(options.caBundle).toString('base64');
  const metadata: Record<string, unknown> = {
    name: options.name ?? WEBHOOK_CONFIGURATION_NAME,
    labels: { 'app.kubernetes.io/name': 'meson-operator' },
  };
  if (options.caBundle === undefined)
    metadata.annotations = {
      'cert-manager.io/inject-ca-from':
        options.certManagerCertificate ?? `${service.namespace}/meson-operator-webhook`,
    };
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata,
    webhooks: RULES.map((r) => ({
      name: r.name,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: r.failurePolicy,
      matchPolicy: 'Equivalent',
      timeoutSeconds: WEBHOOK_TIMEOUT_SECONDS,
      clientConfig: structuredClone(clientConfig),
      // Only the object itself: status writes (the controller's) and deletes never wait for us.
      rules: [
        {
          apiGroups: ['meson.dev'],
          apiVersions: ['v1alpha1'],
          operations: ['CREATE', 'UPDATE'],
          resources: r.resources,
          scope: 'Namespaced',
        },
      ],
      ...(options.namespaces && options.namespaces.length > 0
        ? {
            namespaceSelector: {
              matchExpressions: [
                {
                  key: 'kubernetes.io/metadata.name',
                  operator: 'In',
                  values: [...options.namespaces].sort(),
                },
              ],
            },
          }
        : {}),
    })),
  };
}

/** deploy/webhook/validating-webhook-configuration.yaml: the default object, for cert-manager. */
export function webhookManifest(): string {
  return [
    '# Generated from src/operator/webhook-config.ts (webhookManifest()); a unit test keeps them equal.',
    "# cert-manager's CA injector fills in the CA bundle from the Certificate named in the annotation.",
    '# Without cert-manager, print the object with your CA instead:',
    '#   mesonctl operator webhook-config --ca-bundle ca.crt [--service NS/NAME[:PORT]] > webhook.yaml',
    stringify(webhookConfiguration()),
  ].join('\n');
}
