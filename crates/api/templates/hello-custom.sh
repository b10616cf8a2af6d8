#!/bin/sh
# Hello world on the Custom runtime: fetch each event from the Runtime API, answer a greeting.
API="http://${RUNTIME_API_ADDR}/v1/runtime/invocation"
tmp=$(mktemp -d)
while :; do
  curl -sS -D "$tmp/h" -o "$tmp/event" "$API/request" || exit 1
  id=$(sed -n 's/^[Xx]-[Cc][Ff][Ff]-[Rr][Ee][Qq][Uu][Ee][Ss][Tt]-[Ii][Dd]:[[:space:]]*//p' "$tmp/h" | tr -d '\r\n')
  echo "hello from the Custom runtime, request $id"
  printf '{"message":"hello world","request_id":"%s"}' "$id" >"$tmp/out"
  curl -sS -o /dev/null -X POST --data-binary @"$tmp/out" "$API/response/$id" || exit 1
done
