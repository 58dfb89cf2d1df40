/**
 * KVM when a guest really runs under it, TCG otherwise (docs/devices.md).
 * `kvmProbe` boots a 512-byte guest under `-accel kvm` and says whether it
 * printed within the deadline; `accel: "auto"` makes the same decision once
 * per binary and process.
 *
 *   npx tsx examples/kvm.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Machine } from "../src/index.js" // from "qemu-machine" in your project

const program = Effect.gen(function*() {
  const verdict = yield* Machine.kvmProbe({ deadline: "5 seconds" })
  yield* Console.log(`KVM runs a guest here: ${verdict.runs} (${verdict.detail})`)
  const vm = yield* Machine.launch({ machineType: "none", accel: "auto" })
  const accel = vm.command[vm.command.indexOf("-accel") + 1]
  yield* Console.log(`launched with -accel ${accel}`)
  const kvm = yield* vm.execute("query-kvm")
  yield* Console.log(`query-kvm: present ${kvm.present}, enabled ${kvm.enabled}`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
