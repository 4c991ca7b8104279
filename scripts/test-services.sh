#!/usr/bin/env bash
# Starts every service the test suite talks to, each idempotently (a running one is reused):
# the legacy MariaDB with its binlog, the legacy PostgreSQL with logical decoding, and the
# distributed stack (Kafka, Kafka Connect with Debezium, OpenSearch, MongoDB wire server), and
# Debian's Chromium for the dashboard's browser test.
# The first run on a fresh machine downloads the stack's jars from Maven Central (~180 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/legacy-db.sh up
bash scripts/legacy-pg.sh up
bash stack/stack.sh up
bash scripts/browser.sh
