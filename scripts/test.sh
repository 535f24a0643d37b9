#!/usr/bin/env bash
# The whole test suite: formatting, lints, every test (unit, property, exhaustive, CLI,
# doc), and the seeded-bug check of the revoke regression tests.
set -euo pipefail
cd "$(dirname "$0")/.."

for c in rustfmt clippy; do
  if ! cargo "${c/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$c"
  fi
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --all-targets
cargo test --doc
echo "== seeded bugs"
scripts/seeded-bugs.sh
