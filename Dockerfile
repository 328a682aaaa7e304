# Build a static binary, then ship it alone on a minimal base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/edge ./cmd/edge \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/edgectl ./cmd/edgectl \
 && mkdir -p /out/data/uploads

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/edge /out/edgectl /usr/local/bin/
COPY configs/edge.yaml /etc/edge/edge.yaml
# The upload store must be writable by the non-root user; mount a volume
# here (shared between nodes that share uploads). Distroless has no shell
# to make it, so it comes from the build stage.
COPY --from=build --chown=nonroot:nonroot /out/data /var/lib/edge
ENV EDGE_UPLOADS_DIR=/var/lib/edge/uploads
VOLUME /var/lib/edge
# Listen on every interface inside the container: a non-loopback address
# refuses to start without auth.hmac_secrets (EDGE_AUTH_HMAC_SECRETS) or
# auth.jwks_file, so pass one.
ENV EDGE_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot:nonroot
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/edgectl", "health", "--server", "http://127.0.0.1:8080"]
ENTRYPOINT ["/usr/local/bin/edge", "--config", "/etc/edge/edge.yaml"]
