# The Spark executor image: `meson-executor` (the executor program, as in executors/Dockerfile)
# on top of Apache Spark, for spark step Pods (src/launchers/kubernetes-pod.ts: DEFAULT_SPARK_IMAGE).
# The step Pod runs spark-submit in client mode and is the Spark driver; Spark's executor Pods
# run this same image by default (spark.kubernetes.container.image), through Spark's own
# ENTRYPOINT, which is kept: the Pod launcher starts `meson-executor` explicitly.
# Build from the repository root (no Docker daemon in CI: this image is not built there; the
# checks in test/helm/images.test.ts keep it honest):
#   docker build -f executors/spark.Dockerfile -t ghcr.io/meson-k8s/executor-spark:0.1.0 .
#   docker push ghcr.io/meson-k8s/executor-spark:0.1.0
# The bases are pinned by tag only (no published digest was at hand): pin them by digest in your
# registry mirror for reproducible builds:
#   docker build --build-arg SPARK_IMAGE=apache/spark:3.5.7-java17-python3@sha256:<digest> \
#     --build-arg NODE_IMAGE=node:24.21.0-slim@sha256:<digest> ...
ARG NODE_IMAGE=node:24.21.0-slim
ARG SPARK_IMAGE=apache/spark:3.5.7-java17-python3
FROM ${NODE_IMAGE} AS node

FROM ${SPARK_IMAGE}
USER root
# Node's official Linux binary (glibc): Node >= 22.18 runs the executor's TypeScript directly.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --chown=root:root --chmod=0644 executors/*.ts /opt/meson/executors/
RUN node --version \
 && rm -f /opt/meson/executors/*.test.ts \
 && printf '#!/bin/sh\nexec node /opt/meson/executors/pod.ts "$@"\n' > /usr/local/bin/meson-executor \
 && chmod 0755 /usr/local/bin/meson-executor \
 && mkdir -p /meson/work && chown 185:185 /meson/work

# The base image's `spark` user (uid 185), numeric so that runAsNonRoot can verify it.
USER 185:185
WORKDIR /meson/work
ENV MESON_WORK_DIR=/meson/work \
    PATH=/opt/spark/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
