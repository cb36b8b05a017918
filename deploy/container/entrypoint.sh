#!/bin/sh
# The image's entrypoint: the first argument names the program, the rest are its flags, and the
# program replaces this shell (so it is PID 1 and gets SIGTERM itself).
set -eu
bin=/opt/warmline/bin
program="${1:-}"
[ $# -gt 0 ] && shift
case "$program" in
  matchmaker|relay) exec "$bin/$program" "$@" ;;
  web|warmline-web) exec "$bin/warmline-web" "$@" ;;
  admin|warmline-admin) exec "$bin/warmline-admin" "$@" ;;
  *)
    echo "usage: IMAGE matchmaker|relay|web|admin [flags...] (each prints its flags with --help)" >&2
    exit 2 ;;
esac
