/**
 * Re-adopting a running QEMU after its supervisor died (docs/devices.md).
 * Start one, then attach to it:
 *
 *   qemu-system-x86_64 -machine none -display none -qmp unix:/tmp/vm1.qmp,server=on,wait=off &
 *   npx tsx examples/attach.ts /tmp/vm1.qmp
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Option } from "effect"
import { Machine } from "../src/index.js" // from "qemu-machine" in your project

const path = process.argv[2] ?? "/tmp/vm1.qmp"

const program = Effect.gen(function*() {
  // The scope's end detaches (QEMU keeps running); onClose: "shutdown" would quit it.
  const vm = yield* Machine.attach({ monitor: { path } })
  yield* Console.log(`attached to ${vm.address}, pid ${Option.getOrElse(vm.pid, () => "unknown")}`)
  yield* Console.log(`command: ${vm.command.join(" ")}`)
  const status = yield* vm.execute("query-status")
  yield* Console.log(`status: ${status.status}`)
  // Events from before the attach are not replayed; from now on they are ours.
  const qmp = yield* vm.qmp
  yield* vm.execute("stop")
  const stop = yield* qmp.eventWait("STOP", { timeout: "5 seconds" })
  yield* Console.log(`paused at ${stop.timestamp.seconds}`)
  yield* vm.execute("cont")
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
