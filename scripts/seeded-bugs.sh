#!/usr/bin/env bash
# Plants each of the three bugs fixed by "libceph: fix ceph_msg_revoke()" in a scratch copy
# of the crate and checks that its regression test in tests/patch_regressions.rs fails.
# Exit status 0 means every planted bug was caught.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CARGO_TARGET_DIR="${SEEDED_TARGET_DIR:-$root/target/seeded-bugs}"

plant() { # name, test, python replacement program
  local name=$1 test=$2 prog=$3
  rm -rf "$work/crate" && mkdir -p "$work/crate"
  (cd "$root" && git ls-files -z -co --exclude-standard | xargs -0 -I{} cp --parents {} "$work/crate/")
  python3 - "$work/crate" <<<"$prog"
  if (cd "$work/crate" && cargo test -q --no-default-features --test patch_regressions "$test" >"$work/log" 2>&1); then
    echo "NOT CAUGHT: $name ($test passed with the bug planted)"; tail -20 "$work/log"; return 1
  fi
  if ! grep -q "test $test .*FAILED\|$test.*panicked\|failures:" "$work/log"; then
    echo "BROKEN PLANT: $name did not build or run"; tail -20 "$work/log"; return 1
  fi
  echo "caught: $name -> $test fails"
}

plant "bug 1: revoked data bytes are not skipped" bug1_revoke_during_data_keeps_framing '
import sys; p = sys.argv[1] + "/src/send/frame.rs"; s = open(p).read()
old = "        self.tail = Inline::new(&tail[..len]);\n        self.aborted = true;\n"
assert s.count(old) == 1
s = s.replace(old, old + "        self.body_len = self.written.saturating_sub(self.head_len()).min(self.body_len);\n", 1)
open(p, "w").write(s)'

plant "bug 2: tag and header zeroed by an early revoke" bug2_revoke_inside_tag_or_header_sends_them_intact '
import sys; p = sys.argv[1] + "/src/send/frame.rs"; s = open(p).read()
old = "filler.piece(&mut pos, skip, self.head.as_slice())?;"
assert s.count(old) == 1
s = s.replace(old, "filler.piece(&mut pos, skip, if self.aborted { &ZEROS[..self.head.len()] } else { self.head.as_slice() })?;", 1)
s = s.replace("let zero_from = skip.max(self.head_len());", "let zero_from = skip.max(self.head_len()); pos = self.head_len();", 1)
open(p, "w").write(s)'

plant "bug 3: owed zeros survive a reset" bug3_reset_forgets_owed_zeros '
import sys; p = sys.argv[1] + "/src/send/mod.rs"; s = open(p).read()
old = "        self.staged.clear();\n        self.staged_bytes = 0;\n"
assert s.count(old) == 1
s = s.replace(old, "        self.staged.retain(|s| s.frame.is_aborted());\n        self.staged_bytes = self.staged.iter().map(|s| s.frame.remaining()).sum();\n", 1)
open(p, "w").write(s)'

echo "all three planted bugs were caught"
