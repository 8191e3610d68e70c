# The operator image: `mesonctl operator` (the Helm chart's Deployment runs `operator ...` as args).
# Build from the repository root:
#   docker build -f docker/operator.Dockerfile -t ghcr.io/meson-k8s/meson:0.1.0 .
ARG NODE_IMAGE=node:24.21.0-slim
FROM ${NODE_IMAGE}
WORKDIR /opt/meson
COPY package.json package-lock.json ./
# runtime dependencies only; no install scripts run
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY executors ./executors
USER 1000:1000
ENTRYPOINT ["node", "/opt/meson/bin/mesonctl.js"]
CMD ["operator"]
