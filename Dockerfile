# Switchboard's image: a build stage with Go and PortAudio's headers, and a
# slim runtime with PortAudio's library. CI runs the build stage's steps
# outside Docker (scripts/dockerfile-steps) so they cannot rot.

FROM golang:1.26-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends portaudio19-dev pkg-config && rm -rf /var/lib/apt/lists/*
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The version and commit the binary reports (switchboard version, /version,
# the log at start) come from git when the build context holds the
# repository's .git, or from these build arguments
# (docker build --build-arg VERSION=v1.2.3 --build-arg VCS_REVISION=...).
ARG VERSION=""
ARG VCS_REVISION=""
ARG VCS_TIME=""
ARG VCS_MODIFIED=""
RUN CGO_ENABLED=1 go build -tags portaudio -trimpath -buildvcs=false -ldflags "-s -w $(sh scripts/version-ldflags)" -o /out/switchboard ./cmd/switchboard && /out/switchboard version

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libportaudio2 ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/switchboard --create-home switchboard \
 && install -d -o switchboard -g switchboard /var/lib/switchboard/spool \
 && install -d -m 0700 -o switchboard -g switchboard /var/lib/switchboard/data
COPY --from=build /out/switchboard /usr/local/bin/switchboard
USER switchboard
ENV SWITCHBOARD_ADDR=0.0.0.0:8080
# --data-dir: the generated admin key when SWITCHBOARD_ADMIN_KEY is unset,
# and history.db, the call history, when DATABASE_URL is unset.
ENV SWITCHBOARD_DATA_DIR=/var/lib/switchboard/data
EXPOSE 8080 40000/udp
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve"]
