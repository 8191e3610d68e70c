export {
  buildRunNotification,
  eventForPhaseChange,
  type NotificationEvent,
  type RunNotification,
  type SummaryOptions,
} from './summary.ts';
export {
  backoffDelay,
  DEFAULT_RETRY,
  DEFAULT_TIMEOUT_MS,
  type DeliveryResult,
  deliverWebhook,
  type NotificationConfig,
  type NotifyLogger,
  notifyRun,
  type RetryPolicy,
  redactUrl,
  type WebhookDeps,
  type WebhookTarget,
} from './webhook.ts';
