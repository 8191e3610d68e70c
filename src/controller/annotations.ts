// Labels and annotations through which the API asks the controller for run-level behaviour.

/** Label on every run of one backfill request (the backfill id). */
export const BACKFILL_LABEL = 'meson.dev/backfill';
/** Annotation: how many runs of the backfill may be active at once. */
export const BACKFILL_PARALLELISM = 'meson.dev/backfill-parallelism';
/** Annotation: added to the priority of every step task of the run. */
export const RUN_PRIORITY = 'meson.dev/priority';
