# The runtime image alone, from release binaries built outside: what `make image`
# (scripts/build-images.sh) builds with buildah, with no Docker engine and no registry. The
# build context is not the repository but a root filesystem the script stages, one per
# function, under target/images/rootfs/<bin>/:
#
#   usr/local/bin/rrstitch-function   the function's release binary, debug info stripped
#   lib/…, lib64/…                    exactly the shared libraries `ldd` lists for it (glibc,
#                                     libgcc_s) and the dynamic loader
#   etc/ssl/certs/ca-certificates.crt the host's CA bundle (TLS is rustls with built-in
#                                     webpki roots; the bundle is there for anything else)
#   etc/passwd, etc/group             root and the unprivileged user 65532 (as in distroless)
#   etc/nsswitch.conf, tmp/ (1777)
#
# so the image holds what distroless/cc would, less everything the binary does not load.
# With Docker (same result, from the same staged directory):
#
#   docker build -f infra/docker/runtime.Dockerfile target/images/rootfs/rrstitch-ingest
#
# infra/docker/Dockerfile is the self-contained multi-stage build (compiles in a Rust image,
# runs on distroless) for users who have Docker and a registry.

FROM scratch

COPY . /

# distroless's unprivileged user; Cloud Run sets PORT (8080 unless configured otherwise).
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/rrstitch-function"]
