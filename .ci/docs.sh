#!/usr/bin/env bash
# CI for the API description and its page; sourced by .ci/run or run by
# hand (bash .ci/docs.sh). Quiet unless something fails; safe to repeat.
#  1. installs the Node tools of package-lock.json (npm ci),
#  2. lints openapi.json with Redocly CLI (rules in redocly.yaml),
#  3. checks that docs/ holds the files of the pinned swagger-ui-dist,
#  4. installs Debian's chromium for TestDocsBrowser when there is none.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== npm ci"
# No install script is needed: the linter is bundled and swagger-ui-dist is
# static files (its one dependency only reports downloads).
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null

echo "== redocly lint openapi.json"
if ! lint_out=$(npx --no redocly lint openapi.json --format=stylish 2>&1); then
  echo "$lint_out"
  false
fi

echo "== docs/ matches swagger-ui-dist $(node -p 'require("./node_modules/swagger-ui-dist/package.json").version')"
dist=node_modules/swagger-ui-dist
for f in LICENSE NOTICE favicon-32x32.png index.css swagger-ui-bundle.js.LICENSE.txt; do
  if ! cmp -s "docs/$f" "$dist/$f"; then
    echo "docs/$f differs from $dist/$f: cp $dist/$f docs/"
    false
  fi
done
for f in swagger-ui-bundle.js swagger-ui.css; do
  if ! gzip -dc "docs/$f.gz" | cmp -s - "$dist/$f"; then
    echo "docs/$f.gz is not $dist/$f: gzip -9n -c $dist/$f > docs/$f.gz"
    false
  fi
done

if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
