# syntax=docker/dockerfile:1
# Images for docker-compose.yml, from one multi-stage build:
#   --target bridge       (the default, last stage) mastra-task-bridge with production dependencies only; it needs
#                         MASTRA_URL (the embedded demo mode needs @mastra/core, a dev dependency, and is not in here)
#   --target mastra-demo  the demo Mastra server (demo/server.ts, compiled to dist-demo/) with the full dependency tree
# Both run as the unprivileged `node` user (uid 1000) and carry a HEALTHCHECK. Node 24 (LTS) is one of the two versions
# the test suite runs on (.ci/run: 22 and 24; package.json engines: >=22.13).
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

# ---- build: compile src/ to dist/ (what the npm package ships) and demo/ to dist-demo/ (the demo target only) -------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json tsconfig.demo.json ./
COPY src ./src
COPY demo ./demo
RUN npm run build && npm run build:demo

# ---- prod-deps: the bridge's runtime dependencies only --------------------------------------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# ---- mastra-demo: a real Mastra server with a continuous demo workload (DEMO_* variables, see demo/server.ts) -------
FROM ${NODE_IMAGE} AS mastra-demo
ENV NODE_ENV=production \
    DEMO_HOST=0.0.0.0 \
    DEMO_PORT=4111
WORKDIR /app
COPY package.json ./
# The demo uses @mastra/core, @mastra/hono, @mastra/libsql, ai...: devDependencies of the bridge package.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist-demo ./dist-demo
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 4111
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.DEMO_PORT||4111)+'/api/background-tasks?perPage=1').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "dist-demo/server.js"]

# ---- bridge (default) -----------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS bridge
ENV NODE_ENV=production \
    BRIDGE_HOST=0.0.0.0 \
    BRIDGE_PORT=9469
WORKDIR /app
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The live board's client script (read at runtime from <package>/assets, next to dist/).
COPY assets ./assets
COPY config/bridge.yaml ./config/bridge.yaml
# Where BRIDGE_CHECKPOINT_FILE points in docker-compose.yml (a volume), writable by the non-root user.
RUN mkdir -p /var/lib/mastra-task-bridge && chown node:node /var/lib/mastra-task-bridge
USER node
EXPOSE 9469
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.BRIDGE_PORT||9469)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/main.js"]
