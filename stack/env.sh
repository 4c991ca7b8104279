#!/usr/bin/env bash
# Endpoints of the local stack (stack.sh). Sourced, it exports them:
#   source stack/env.sh
# Run, it prints them as export lines:
#   eval "$(bash stack/env.sh)"
# Values already set in the environment win, so a CI job can point elsewhere.

KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
CONNECT_URL="${CONNECT_URL:-http://127.0.0.1:8083}"
OPENSEARCH_URL="${OPENSEARCH_URL:-http://127.0.0.1:9200}"
MONGO_URL="${MONGO_URL:-mongodb://127.0.0.1:27017}"
export KAFKA_BROKERS CONNECT_URL OPENSEARCH_URL MONGO_URL

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  for name in KAFKA_BROKERS CONNECT_URL OPENSEARCH_URL MONGO_URL; do
    printf 'export %s=%q\n' "$name" "${!name}"
  done
fi
