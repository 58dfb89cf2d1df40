#!/usr/bin/env bash
# The package as a user gets it: `npm pack`, then installed into fresh projects, as the README's Install
# section says. Fails on anything a user would trip on.
#   - an Effect app at the lowest and at the highest supported versions: exactly one copy of effect;
#     a TypeScript project with `declaration: true` exporting an Effect built from the library compiles
#     (TypeScript 5.9, and 7.0 on the highest); the README script runs (it boots QEMU);
#   - the size the package adds to an Effect app that already has effect and @effect/platform(-node);
#   - `npx qemu-machine doctor`.
# Usage: scripts/package-check.sh [WORKDIR]   (default: a fresh temp dir, removed at the end)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d "${TMPDIR:-/tmp}/qm-package-check-XXXXXX")}
[ $# -ge 1 ] || trap 'rm -rf "$work"' EXIT
cd "$root"
tarball="$work/$(npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "package-check: packed $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KiB)"
contents=$(tar -tzf "$tarball")
grep -qx "package/prebuilds/linux-x64/qemu_machine_native.node" <<<"$contents" ||
  { echo "package-check: the prebuilt native helper is not in the package" >&2; exit 1; }
if tar -xzOf "$tarball" --wildcards 'package/dist/*.d.ts' | grep -q "@internal"; then
  echo "package-check: @internal items in the published .d.ts" >&2; exit 1
fi

# The consumer's code: an exported Effect whose type names the library's errors (TS2742/TS2883 before subpath exports).
write_consumer() {
  mkdir -p "$1/src"
  cat > "$1/src/vm.ts" <<'EOF'
import { Effect } from "effect"
import { Machine } from "qemu-machine"

/** Exported, so its type (the library's errors included) goes into the declaration file. */
export const status = Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"] })
  const { event } = yield* vm.executeAndWait("stop", undefined, "STOP")
  const status = yield* vm.execute("query-status")
  return { event: event.event, status: status.status }
}))

export const machineLayer = Machine.layer({ machineType: "none" })
EOF
  cat > "$1/tsconfig.json" <<'EOF'
{
  "compilerOptions": {
    "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
    "exactOptionalPropertyTypes": true, "declaration": true, "rootDir": "src", "outDir": "dist", "skipLibCheck": false,
    "types": ["node"]
  },
  "include": ["src"]
}
EOF
  # The README's script, as plain JavaScript.
  cat > "$1/readme-script.mjs" <<'EOF'
import { Effect } from "effect"
import { Machine } from "qemu-machine"

const program = Effect.gen(function*() {
  const vm = yield* Machine.launch({
    machineType: "pc,graphics=off",
    args: ["-nic", "none", "-m", "64"],
    console: {}
  })
  const console = yield* vm.console
  yield* console.waitFor("No bootable device", { timeout: "10 seconds" })
  const { event } = yield* vm.executeAndWait("stop", undefined, "STOP")
  const status = yield* vm.execute("query-status")
  return { event, status }
})

const result = await Effect.runPromise(Effect.scoped(program))
if (result.event.event !== "STOP" || result.status.status !== "paused") throw new Error(JSON.stringify(result))
console.log(`readme-script: ${result.event.event}, ${result.status.status}`)
EOF
}

# effect_version platform_version platform_node_version typescript_versions...
check_app() {
  local label=$1 effect=$2 platform=$3 platformNode=$4
  shift 4
  local app="$work/$label"
  mkdir -p "$app" && cd "$app"
  printf '{ "name": "%s", "version": "1.0.0", "private": true, "type": "module" }\n' "$label" > package.json
  npm install --no-audit --no-fund --loglevel=error "effect@$effect" "@effect/platform@$platform" "@effect/platform-node@$platformNode" "@types/node@^20"
  local before after
  before=$(du -sk node_modules | cut -f1)
  npm install --no-audit --no-fund --loglevel=error "$tarball"
  after=$(du -sk node_modules | cut -f1)
  echo "package-check: $label: qemu-machine adds $(( (after - before) / 1024 )) MiB ($(( after - before )) KiB) to node_modules"
  if [ $(( after - before )) -gt $(( 5 * 1024 )) ]; then echo "package-check: $label: over 5 MiB" >&2; exit 1; fi
  local copies
  copies=$(find . -path '*/node_modules/effect/package.json' | wc -l)
  [ "$copies" = 1 ] || { echo "package-check: $label: $copies copies of effect" >&2; find . -path '*/node_modules/effect/package.json' >&2; exit 1; }
  write_consumer "$app"
  for ts in "$@"; do
    rm -rf dist
    npx --yes -p "typescript@$ts" tsc -p tsconfig.json
    grep -q "qemu-machine/Errors" dist/vm.d.ts || { echo "package-check: $label: TypeScript $ts: the declaration does not name the errors" >&2; exit 1; }
    echo "package-check: $label: a declaration-emitting project compiles with TypeScript $ts"
  done
  node readme-script.mjs
  cd "$root"
}

check_app effect-lowest "~3.19.0" "~0.93.0" "~0.100.0" 5.9
check_app effect-highest "^3.22" "^0.97" "^0.108" 5.9 7.0
cd "$work/effect-highest"
npx qemu-machine doctor
echo "package-check: ok"
