#!/bin/bash
# The image's HEALTHCHECK: GET /healthz on the service's own port (from WARMLINE_LISTEN) and
# succeed on a 200. bash's /dev/tcp does the request, so the image needs no curl.
set -eu
port="${WARMLINE_LISTEN##*:}"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 3 status <&3
case "$status" in
  "HTTP/1."?" 200 "*) exit 0 ;;
  *) exit 1 ;;
esac
