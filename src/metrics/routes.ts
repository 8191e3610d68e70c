// GET /metrics: the Prometheus text exposition format. Not in PUBLIC_ROUTES: with a token set it
// needs "Authorization: Bearer <token>" like every API route (Prometheus sends one with a scrape
// config's `authorization: { credentials_file: ... }`): metric labels name namespaces and workflows.
import type { FastifyPluginAsync } from 'fastify';
import type { Metrics } from './index.ts';

export function metricsRoutes(metrics: Metrics): FastifyPluginAsync {
  return async (app) => {
    app.get(
      '/metrics',
      {
        schema: {
          summary: 'Prometheus metrics (text exposition format 0.0.4)',
          response: { 200: { type: 'string' } },
        },
      },
      async (_req, reply) => {
        const { contentType, body } = await metrics.scrape();
        return reply.type(contentType).send(body);
      },
    );
  };
}
