#!/usr/bin/env bash
# Checks deploy/systemd offline, without systemd as PID 1: systemd-analyze verify (syntax, unknown
# keys, executables) and security --offline (exposure at most 2.0 of 10) on the units installed into a
# temporary root, then Warmline's rules: the hardening options every unit must set, the
# descriptor limit, a stop timeout above the drain, and env files that name only real flags.
# Usage: check_systemd.sh UNIT_DIR BIN_DIR   (BIN_DIR: the build tree, for the flags' --help)
# Prints one line per problem and exits 1 if there is any.
set -uo pipefail
units="$1" bin="$2"
problems=0
problem() { echo "systemd: $*"; problems=$((problems + 1)); }
command -v systemd-analyze >/dev/null || { echo "systemd: systemd-analyze is missing (apt-get install systemd)"; exit 1; }

# A root with systemd's own units (verify resolves dependencies such as sysinit.target), ours in
# /etc/systemd/system, and an executable at every ExecStart path.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd" "$root/opt/warmline/bin"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp "$units"/*.service "$units"/*.target "$root/etc/systemd/system/"
for exe in $(sed -n 's#^ExecStart=\([^ ]*\).*#\1#p' "$units"/*.service | sort -u); do
  mkdir -p "$root$(dirname "$exe")"
  printf '#!/bin/sh\nexit 0\n' >"$root$exe"
  chmod +x "$root$exe"
done

# A template is verified through an instance.
names=()
for f in "$units"/*.service "$units"/*.target; do
  n=$(basename "$f")
  case "$n" in *@.service) n="${n%@.service}@8000.service" ;; esac
  names+=("$n")
done
out=$(systemd-analyze verify --man=no --root="$root" "${names[@]}" 2>&1)
[ $? -eq 0 ] && [ -z "$out" ] || problem "systemd-analyze verify: ${out:-failed}"
for n in "${names[@]}"; do
  case "$n" in *.service) ;; *) continue ;; esac
  out=$(systemd-analyze security --offline=true --root="$root" --threshold=20 --no-pager "$n" 2>&1) ||
    problem "$n: exposure above 2.0 (of 10): $(grep Overall <<<"$out")"
done

# What every service unit must say, whatever systemd thinks of it.
required=(DynamicUser=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes
          CapabilityBoundingSet= "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"
          SystemCallFilter=@system-service Restart=on-failure KillSignal=SIGTERM)
for f in "$units"/*.service; do
  n=$(basename "$f")
  for line in "${required[@]}"; do grep -qxF "$line" "$f" || problem "$n: no '$line'"; done
  nofile=$(sed -n 's/^LimitNOFILE=//p' "$f")
  [[ "$nofile" =~ ^[0-9]+$ ]] && [ "$nofile" -le 20000 ] && [ "$nofile" -ge 10000 ] ||
    problem "$n: LimitNOFILE='$nofile'; want 10000-20000 (our hosts cap a process at 20000)"
  stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' "$f")
  [ -n "$stop" ] || { problem "$n: no TimeoutStopSec=<N>s"; stop=0; }

  # The program, and the env files it loads (the secrets one is not in git; its example is).
  program=$(sed -n 's#^ExecStart=/opt/warmline/bin/\([^ ]*\).*#\1#p' "$f")
  case "$program" in
    matchmaker) help=services/matchmaker/matchmaker close=5 ;;
    relay) help=services/relay/relay close=5 ;;
    warmline-web) help=services/web/warmline-web close=1 ;;
    *) problem "$n: ExecStart is not a Warmline program in /opt/warmline/bin"; continue ;;
  esac
  flags=$(env -i "$bin/$help" --help | grep -o 'WARMLINE_[A-Z0-9_]*' | sort -u)
  for envfile in $(sed -n 's#^EnvironmentFile=-\{0,1\}/etc/warmline/##p' "$f"); do
    example="$units/env/$envfile"
    [ -f "$example" ] || { problem "$n: loads /etc/warmline/$envfile, but env/$envfile is not in deploy/systemd"; continue; }
    while IFS='=' read -r key value; do
      case "$key" in ''|'#'*|BIND_ADDRESS) continue ;; esac
      # common.env is shared: its keys must be a flag of at least this program or be ignored
      # by it, so only the program-specific files are held to this program's flags
      [ "$envfile" = common.env ] && continue
      grep -qxF "$key" <<<"$flags" || problem "$n: env/$envfile sets $key, which is not a flag of $program (--help)"
      if [ "$key" = WARMLINE_DRAIN_DELAY_MS ] && [ $((value / 1000 + close)) -ge "$stop" ]; then
        problem "$n: TimeoutStopSec=${stop}s is not above the drain delay ${value} ms + ${close} s of closing"
      fi
      if [ "$key" = WARMLINE_MAX_CONNECTIONS ] && [ "$value" -ge "${nofile:-0}" ]; then
        problem "$n: WARMLINE_MAX_CONNECTIONS=$value is not below LimitNOFILE=$nofile"
      fi
    done <"$example"
  done
  # secrets only from the root-only file
  grep -q '^Environment=.*\(SECRET\|REDIS_URL\)' "$f" && problem "$n: a secret in Environment=; use secrets.env"
done

# common.env: every key a flag of some service.
all=$(for p in services/matchmaker/matchmaker services/relay/relay services/web/warmline-web; do
  env -i "$bin/$p" --help; done | grep -o 'WARMLINE_[A-Z0-9_]*' | sort -u)
while IFS='=' read -r key _; do
  case "$key" in ''|'#'*) continue ;; esac
  grep -qxF "$key" <<<"$all" || problem "env/common.env sets $key, which is not a flag of any service (--help)"
done <"$units/env/common.env"
grep -q '^WARMLINE_\(TICKET_SECRET\|REDIS_URL\|CHAT_REDIS_URL\)=' "$units"/env/{common,matchmaker,relay,web}.env &&
  problem "a secret outside env/secrets.env"

if [ "$problems" -gt 0 ]; then echo "systemd: $problems problem(s)"; exit 1; fi
echo "systemd: ok (${#names[@]} units verified)"
