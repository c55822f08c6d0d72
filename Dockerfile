# syntax=docker/dockerfile:1
# connect-chat-gateway: build with dev dependencies, run with production dependencies only.
# The default target is the service. `--target simulator` builds the Connect simulator's own image
# (docker-compose's `simulator` profile); the service's image holds none of it.

FROM node:22-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --workspaces=false: the simulator package (packages/simulator) is no part of the service.
RUN npm ci --workspaces=false --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-info.mjs ./scripts/
COPY src ./src
# The commit being built (the context has no .git): the service reports it at start-up and on /health/live.
ARG SOURCE_COMMIT=unknown
RUN npm run build

FROM node:22-slim AS prod-deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --workspaces=false --no-audit --no-fund && npm cache clean --force

# The Connect simulator, a development tool: built from its package, run with its one runtime
# library (`ws`, a development dependency of the project, so the service's install never has it).
FROM node:22-slim AS simulator-build
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/simulator/package.json ./packages/simulator/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY packages/simulator/tsconfig.build.json ./packages/simulator/
COPY packages/simulator/src ./packages/simulator/src
RUN npm run build --workspace @connect-chat-gateway/simulator

FROM node:22-slim AS simulator
ENV NODE_ENV=production
WORKDIR /app
COPY --chown=root:root packages/simulator/package.json ./
COPY --from=simulator-build --chown=root:root /app/node_modules/ws ./node_modules/ws
COPY --from=simulator-build --chown=root:root /app/packages/simulator/dist ./dist
USER node
EXPOSE 4010
CMD ["node", "dist/main.js"]

# The service: the last stage, so a plain `docker build` makes it.
FROM node:22-slim
# tini as PID 1: forwards SIGTERM to node and reaps zombies, with or without `docker run --init`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --chown=root:root package.json ./
COPY --from=prod-deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
# Files stay root-owned and read-only to the process.
USER node
# Last: a new commit changes only this layer's metadata, the layers above stay cached.
ARG SOURCE_COMMIT=unknown
LABEL org.opencontainers.image.revision=$SOURCE_COMMIT
EXPOSE 3000
# Liveness only: an overloaded or draining replica is alive; readiness is for the load balancer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health/live').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/server.js"]
