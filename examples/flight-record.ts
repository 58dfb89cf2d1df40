/**
 * What a failure carries (docs/devices.md): the error's flight record, with
 * the last QMP messages, the console's and QEMU's last output and the
 * command line (secrets redacted), rendered for a log or a CI report.
 *
 *   npx tsx examples/flight-record.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import { Machine } from "../src/index.js" // from "qemu-machine" in your project

const program = Effect.gen(function*() {
  const vm = yield* Machine.launch({
    machineType: "pc,graphics=off",
    args: ["-nodefaults", "-object", "secret,id=s0,data=hunter2"],
    console: {}
  })
  yield* (yield* vm.console).waitFor(/No bootable device/, { timeout: "30 seconds" })
  yield* vm.execute("query-status")
  // A command QEMU refuses: the QMPCommandError has the record of what led to it.
  yield* vm.execute("device_del", { id: "no-such-device" }).pipe(
    Effect.catchTag("QMPCommandError", (error) =>
      Console.log(`${error.message}\n${error.flightRecord?.render() ?? "(no record)"}`))
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
