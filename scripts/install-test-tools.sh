#!/usr/bin/env bash
# Installs the third-party tools the tests check simgate against, from
# Debian's packages: tshark (decodes our captures), python3-jwt and openssl
# (verify our tokens), curl (SOCKS), libusrsctp-examples (an independent SCTP
# stack for N2 interop). Needs root (apt-get); does nothing when all are there.
set -euo pipefail
need=()
command -v tshark >/dev/null || need+=(tshark)
/usr/bin/python3 -c 'import jwt' 2>/dev/null || need+=(python3-jwt)
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || need+=(python3-cryptography)
command -v openssl >/dev/null || need+=(openssl)
command -v curl >/dev/null || need+=(curl)
command -v unshare >/dev/null || need+=(util-linux)
[ -x /usr/lib/usrsctp/echo_server ] || need+=(libusrsctp-examples)
[ ${#need[@]} -eq 0 ] && exit 0
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
for i in 1 2 3; do
  if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; then exit 0; fi
  echo "apt-get failed (try $i); retrying"; sleep 10
done
exit 1
