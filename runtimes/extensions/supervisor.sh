#!/bin/bash
# fgs instance supervisor (SPEC.md 5). Runs as the instance's main program when the function has
# extensions: starts every extension script with /bin/bash in its own folder, waits until fgs
# says they have all registered, then execs the runtime ("$@"). Each script's output is marked
# with its name so that fgs can tell extension lines from function lines, and a script that
# exits is reported to fgs, which decides what that means for the instance.
#
# It speaks HTTP to the instance's own API with bash's /dev/tcp: nothing else needs to be
# installed in the sandbox.
set -u
export LC_ALL=C
api="${RUNTIME_API_ADDR:?}"
api_host="${api%:*}"
api_port="${api##*:}"

# fgs_call METHOD PATH: one HTTP/1.1 request without a body; prints the status code.
fgs_call() {
  local fd line
  exec {fd}<>"/dev/tcp/${api_host}/${api_port}" || { echo 000; return; }
  printf '%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' \
    "$1" "$2" "$api" >&"$fd"
  IFS= read -r line <&"$fd" || line="HTTP/1.1 000"
  exec {fd}>&-
  line="${line#* }"
  echo "${line%% *}"
}

# run_extension PATH: the script in the foreground of a subshell, its lines marked
# `\037ext:<name>\037<line>`, then its exit status reported once every line is written. (A
# pipeline rather than a process substitution: bash waits for both ends of a pipeline.)
run_extension() {
  local dir="${1%/*}" name="${1##*/}" code
  (cd "$dir" && exec /bin/bash "./$name") 2>&1 |
    while IFS= read -r l || [ -n "$l" ]; do printf '\037ext:%s\037%s\n' "$name" "$l"; done
  code=${PIPESTATUS[0]}
  fgs_call POST "/fgs/v1/extensions/exited?name=${name}&code=${code}" >/dev/null
}

if [ -n "${FGS_EXTENSIONS:-}" ]; then
  while IFS= read -r path; do
    [ -n "$path" ] && run_extension "$path" &
  done <<<"$FGS_EXTENSIONS"
  # Long-polls until every script has registered; fgs answers otherwise when it gives up, and
  # then ends the instance itself.
  status=$(fgs_call GET /fgs/v1/extensions/ready)
  [ "$status" = 200 ] || exit 96
fi
unset FGS_EXTENSIONS
exec "$@"
