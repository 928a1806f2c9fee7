#!/usr/bin/env bash
# The end-to-end tests check `paved client setup` with the AWS CLI v2 as well as v1 (in .venv).
# v2 is not on PyPI; on Debian it is the `awscli` package. This installs it when it is missing
# and this user may (root with apt-get); otherwise the v2 test says why it cannot run.
set -uo pipefail
for aws in /usr/bin/aws /usr/local/bin/aws; do
  if [ -x "$aws" ] && "$aws" --version 2>/dev/null | grep -q '^aws-cli/2'; then
    exit 0
  fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
  echo "installing the AWS CLI v2 (Debian's awscli) for the client setup tests"
  export DEBIAN_FRONTEND=noninteractive
  (apt-get install -y -qq awscli > /dev/null 2>&1 \
    || { apt-get update -qq > /dev/null 2>&1 && apt-get install -y -qq awscli > /dev/null 2>&1; }) \
    || echo "could not install the AWS CLI v2; its client setup test will fail in CI"
fi
exit 0
