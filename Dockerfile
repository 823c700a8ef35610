# One image for every simgate network function and the relying-party
# example. The binaries are built first, static (CGO_ENABLED=0), by
# scripts/docker-build.sh, so the image needs no base image to pull:
#   scripts/docker-build.sh            # builds bin/ and the image simgate:local
FROM scratch
COPY bin/simgate /simgate
COPY bin/relying-party /relying-party
WORKDIR /data
ENTRYPOINT ["/simgate"]
CMD ["up"]
