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

# The interop tests need a real ceph-mon (and tshark); install them when we can.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing the lab packages (ceph-mon, ceph-common, tshark) if missing"
  t0=$(date +%s)
  scripts/ceph-lab.sh install --tshark
  echo "   lab packages ready in $(( $(date +%s) - t0 )) s"
else
  echo "== not root: tests/real_mon.rs runs only if ceph-mon and tshark are installed"
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings
cargo check --lib --no-default-features
echo "== rustdoc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -q
echo "== cargo test"
cargo test --all-targets
cargo test --doc
echo "== seeded bugs"
scripts/seeded-bugs.sh
