#!/usr/bin/env bash
# Shrinks fuzz/corpus/<target> to at most CAP inputs (default 40) after a fuzzing session: libFuzzer's
# merge (what `cargo fuzz cmin` runs) measures the edges each input covers, then the named seeds are
# kept and the inputs adding the most edges not yet covered are taken first until CAP. Needs nightly
# and python3.
#
#   cargo +nightly fuzz run configure -- -max_total_time=600   # grows fuzz/corpus/configure
#   fuzz/minimise.sh configure                                 # back to 40 inputs
set -euo pipefail
cd "$(dirname "$0")/.."
target="$1"
cap="${2:-40}"

cargo +nightly fuzz build "$target"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/merged"
"fuzz/target/x86_64-unknown-linux-gnu/release/$target" -merge=1 -use_counters=0 -timeout=30 \
    -merge_control_file="$work/control" "$work/merged" "fuzz/corpus/$target" >"$work/log" 2>&1 ||
    { tail -n 20 "$work/log"; exit 1; }
python3 - "$work/control" "$work/chosen" "$cap" <<'EOF'
import os, re, shutil, sys

control, out, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = open(control).read().split("\n")
count = int(lines[0])
files = lines[2 : 2 + count]
features = {}
for line in lines[2 + count :]:
    if line.startswith("FT "):
        fields = line.split()
        features[int(fields[1])] = set(map(int, fields[2:]))
every = set().union(*features.values())
# Seeds have names; inputs libFuzzer found are named by their SHA-1.
chosen = [i for i, f in enumerate(files) if not re.fullmatch(r"[0-9a-f]{40}", os.path.basename(f))]
covered = set().union(set(), *(features.get(i, set()) for i in chosen))
while len(chosen) < cap:
    rest = [i for i in features if i not in chosen and features[i] - covered]
    if not rest:
        break
    best = max(rest, key=lambda i: (len(features[i] - covered), -os.path.getsize(files[i])))
    chosen.append(best)
    covered |= features[best]
os.makedirs(out)
for i in chosen:
    shutil.copy(files[i], out)
print(f"{len(chosen)} inputs cover {len(covered)} of {len(every)} edge features ({100 * len(covered) / max(len(every), 1):.1f}%)")
EOF
rm -rf "fuzz/corpus/$target"
mv "$work/chosen" "fuzz/corpus/$target"
