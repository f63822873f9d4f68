# Tailor's container image: a Debian bookworm build stage, and a slim runtime with only the
# shared libraries the binary links (and libwebsockets' libev plugin, which it loads at run
# time). Build from the repository root:
#   docker build -t tailor:dev .
# The image runs as 65532:65532 with nothing writable but the /tmp the Deployment mounts.

FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libcurl4-openssl-dev libcjson-dev libyaml-dev libev-dev libwebsockets-dev \
      python3 python3-yaml nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dashboard's chart library, at the version dashboard/package-lock.json pins; it is
# embedded into the binary with the dashboard by scripts/embed_assets.py.
COPY dashboard/package.json dashboard/package-lock.json dashboard/
RUN cd dashboard && npm ci --omit=dev --no-audit --no-fund
# What the build reads: the top-level CMakeLists.txt adds lib/, controller/ and bench/; the
# EC2 catalog is embedded from data/ec2 by scripts/gen_catalog.py. RelWithDebInfo with
# warnings as errors is the build CI tests (same Debian, same compiler); strip drops the
# debug information from the image.
COPY CMakeLists.txt ./
COPY lib/ lib/
COPY controller/ controller/
COPY bench/ bench/
COPY data/ data/
COPY scripts/gen_catalog.py scripts/embed_assets.py scripts/
COPY dashboard/ dashboard/
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTL_TESTS=OFF \
 && cmake --build /build --target tailor -j "$(nproc)" \
 && strip /build/controller/tailor \
 && /build/controller/tailor version

FROM debian:bookworm-slim
# libwebsockets-evlib-ev: libwebsockets17 loads its libev event loop as a plugin
# (libwebsockets-evlib_ev.so) and does not depend on it, so name it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates libcurl4 libcjson1 libyaml-0-2 libev4 \
      libwebsockets17 libwebsockets-evlib-ev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /build/controller/tailor /usr/local/bin/tailor
LABEL org.opencontainers.image.title="tailor" \
      org.opencontainers.image.description="Kubernetes rightsizing operator" \
      org.opencontainers.image.source="https://github.com/tailor-dev/tailor"
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/tailor"]
CMD ["run"]
