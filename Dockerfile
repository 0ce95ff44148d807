# syntax=docker/dockerfile:1
# Smart Whale core: a multi-stage image. The build stage compiles the TypeScript and the native addon
# (CPU path; add nvcc to the build stage for CUDA kernels); the runtime stage holds the package and its
# production dependencies only, runs as the unprivileged `node` user and reports health from /v2/health/ready.
#   docker build -t smart-whale .
#   docker run -p 8080:8080 -e WHALE_HTTP_HOST=0.0.0.0 smart-whale
FROM node:20-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake g++ make && rm -rf /var/lib/apt/lists/*
# onnxruntime-node's own install script would download optional CUDA libraries (npm 10 runs it).
ENV ONNXRUNTIME_NODE_INSTALL=skip
WORKDIR /app
COPY . .
# npm ci runs `prepare`: the toolchain check, then the TypeScript and native builds.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production WHALE_HTTP_HOST=0.0.0.0 WHALE_CACHE_DIR=/var/cache/smart-whale
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json /app/LICENSE ./
COPY --from=build --chown=node:node /app/bin ./bin
COPY --from=build --chown=node:node /app/dist/src ./dist/src
COPY --from=build --chown=node:node /app/build/Release/whale_native.node ./build/Release/whale_native.node
COPY --from=build --chown=node:node /app/src/transport/asyncapi.json ./src/transport/asyncapi.json
COPY --from=build --chown=node:node /app/src/core/monitoring/visualization/assets ./src/core/monitoring/visualization/assets
COPY --from=build --chown=node:node /app/proto ./proto
COPY --from=build --chown=node:node /app/models ./models
COPY --from=build --chown=node:node /app/node_modules ./node_modules
RUN mkdir -p /var/cache/smart-whale && chown node:node /var/cache/smart-whale
USER node
# 8080: HTTP (V2); 8081: gRPC when enabled (grpc.enabled in whale.config.json)
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.WHALE_HTTP_PORT||8080)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/whale.js"]
CMD ["start"]
