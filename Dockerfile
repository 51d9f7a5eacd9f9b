# syntax=docker/dockerfile:1
#
# The Switchyard gateway as a container image.
#
#   docker build -t switchyard .            (or: buildah bud --format docker -t switchyard .)
#   docker run -p 8080:8080 -v switchyard-data:/data \
#     -e SWITCHYARD_ADMIN_KEY=... -e OPENAI_API_KEY=... switchyard
#
# Build stage: npm ci + npm run build, which bundles the server into
# dist/server/switchyard.cjs (scripts/build.ts), then starts the gateway once
# so the launcher writes V8's code cache for exactly this bundle and this Node
# binary (code-cache/, read-only in the image; it halves the CPU time a start
# takes, about 0.6 s to 0.3 s measured on the machine that built this).
#
# Runtime stage: distroless/cc (glibc, libstdc++, CA certificates, tzdata,
# /etc/passwd with the nonroot user; no shell, no package manager), Node's own
# binary copied from the build stage, and the bundle. Nothing from
# node_modules: every dependency is inside the bundle.
#
# Without a registry (deploy/image/build.sh), local stand-ins are built and
# tagged with these two names; elsewhere they are pulled. To run on
# debian:bookworm-slim instead (it has a shell), pass
# --build-arg RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim: the
# runtime stage below sets the numeric user itself, so it works on either.

ARG NODE_IMAGE=docker.io/library/node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm,sharing=locked \
    npm ci --no-audit --no-fund --no-update-notifier
# The sources the build reads (.dockerignore lets in only those).
COPY . .
RUN npm run build \
 && SWITCHYARD_CODE_CACHE=/app/code-cache node deploy/image/warm-code-cache.mjs /app/dist/server/cli.cjs \
 && mkdir -p /rootfs/data /rootfs/app \
 && cp -r dist /rootfs/app/dist \
 && cp -r code-cache /rootfs/app/code-cache \
 && cp deploy/image/healthcheck.cjs /rootfs/app/healthcheck.cjs \
 && cp "$(command -v node)" /rootfs/node \
 && chmod -R a+rX,go-w /rootfs/app

FROM ${RUNTIME_IMAGE}
COPY --from=build /rootfs/node /usr/local/bin/node
COPY --from=build /rootfs/app /app
# An empty /data owned by the runtime user: a new named volume takes its owner from it.
COPY --from=build --chown=65532:65532 /rootfs/data /data
ENV SWITCHYARD_DATA_DIR=/data \
    HOST=0.0.0.0 \
    SWITCHYARD_CODE_CACHE=/app/code-cache \
    NODE_ENV=production
USER 65532:65532
WORKDIR /data
VOLUME /data
EXPOSE 8080
# GET /readyz on 127.0.0.1:$PORT (default 8080) with Node's http module: no curl or shell needed.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/node", "/app/healthcheck.cjs"]
# Exec form: Node is PID 1 and receives SIGTERM/SIGINT itself (the gateway drains on the first
# signal and exits on a second). It starts no child processes, so there are no zombies to reap.
ENTRYPOINT ["/usr/local/bin/node", "/app/dist/server/cli.cjs"]
CMD ["start"]
