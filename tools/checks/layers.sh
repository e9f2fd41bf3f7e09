#!/usr/bin/env bash
# The layering rules of docs/ARCHITECTURE.md, checked on the sources: each layer includes
# only from layers below it. Prints every violation; exits 1 if there is any.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
bad=0
violation() { echo "layers: $1" >&2; bad=1; }

# 1. The command-line layer is the top: nothing else includes its headers.
for h in userspace/cli/*.h; do
	name=$(basename "$h")
	while IFS= read -r hit; do
		violation "$hit includes $name from userspace/cli"
	done < <(grep -rln --include='*.cpp' --include='*.h' --include='*.c' "#include \"$name\"" \
		userspace bpf include tests tools | grep -v '^userspace/cli/' || true)
done
# 2. Live observation (observe.h, live_view.h) is used by presentation only, never below it.
for d in util decode aggregate system record export kernel; do
	if grep -rn '#include "ctbpf/\(observe\|live_view\)\.h"' "userspace/$d"; then
		violation "userspace/$d includes the live-observation layer"
	fi
done
# 3. Only the kernel layer and the BPF programs touch libbpf.
while IFS= read -r f; do
	violation "$f uses libbpf outside userspace/kernel"
done < <(grep -rln '#include <bpf/' userspace | grep -v '^userspace/kernel/' || true)
# 4. Public headers never include private ones.
if grep -n '#include "' include/ctbpf/*.h | grep -v '"ctbpf/'; then
	violation "a public header includes a private one"
fi
exit $bad
