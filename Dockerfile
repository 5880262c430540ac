# Multi-stage build: a static qgate binary on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/qgate/qgate/internal/version.Version=${VERSION}" -o /out/qgate ./cmd/qgate \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/qualtrics-sim ./cmd/qualtrics-sim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/qgate /out/qualtrics-sim /usr/local/bin/
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/qgate"]
CMD ["serve"]
