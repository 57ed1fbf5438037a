# actorserve with the CUDA backend. Build and runtime stages on NVIDIA's Ubuntu 24.04 CUDA
# images; the build stage installs the packages of scripts/install-deps.sh (the same list
# developers and CI use), the runtime stage only the shared libraries the binary links.
#   docker build -t registry.example.com/actorserve:0.1.0-cuda .
# See manifests/README.md for the deployment.

ARG CUDA_VERSION=13.0.0

FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu24.04 AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN apt-get update -qq && scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt ./
COPY model model
COPY actors actors
COPY gpu gpu
COPY gateway gateway
COPY tests tests
COPY models/demo models/demo
# Tests are not built into the image (ACTORSERVE_BUILD_TESTS=OFF); the GPU architectures are
# those of the deployment targets: Ampere (A100, A10), Ada (L4), Hopper (H100, H200),
# Blackwell (B200).
ARG CUDA_ARCHITECTURES="80;86;89;90;100"
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DACTORSERVE_CUDA=ON \
      -DACTORSERVE_BUILD_TESTS=OFF -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}" \
 && cmake --build build --target actorserve -j "$(nproc)" \
 && install -D -m 0755 build/actorserve /out/usr/local/bin/actorserve \
 && mkdir -p /out/usr/local/share/actorserve/models \
 && cp -r models/demo /out/usr/local/share/actorserve/models/demo \
 && chmod -R a+rX /out/usr/local/share/actorserve
# The runtime packages: whichever Ubuntu packages own the libraries the binary links (the CUDA
# libraries come with the runtime image).
RUN for lib in $(ldd build/actorserve | awk '/=> \// {print $3}'); do \
      real=$(realpath "$lib"); \
      dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || true; \
    done | cut -d: -f1 | sort -u > /out/runtime-packages.txt \
 && cat /out/runtime-packages.txt

FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu24.04 AS runtime
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends ca-certificates $(cat /tmp/runtime-packages.txt) \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt
COPY --from=build /out/usr/local /usr/local
# The uid/gid the manifests run as (runAsUser/runAsGroup 10001).
RUN groupadd --gid 10001 actorserve && useradd --uid 10001 --gid 10001 --no-create-home actorserve
USER 10001:10001
ENV ACTORSERVE_CACHE=/tmp/actorserve
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/actorserve"]
CMD ["serve", "--host=0.0.0.0", "--port=8000"]
