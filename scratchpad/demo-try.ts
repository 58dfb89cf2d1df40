import { Effect, Stream } from "effect"
import * as Machine from "../src/Machine.js"
import { seabiosDemo } from "../src/MachineConfig.js"
const t0 = Date.now()
const prog = Effect.gen(function*() {
  const vm = yield* Machine.launch(seabiosDemo)
  console.log("launched", Date.now() - t0, vm.command.join(" "))
  const c = yield* vm.console
  const m = yield* c.waitFor("No bootable device", { timeout: "10 seconds" })
  console.log("console:", JSON.stringify(m.before.slice(0, 300)), Date.now() - t0)
  console.log(yield* vm.execute("query-status"))
  yield* vm.shutdown()
  console.log("log:", yield* vm.log, "exit", yield* vm.exitStatus, Date.now() - t0)
})
Effect.runPromise(Effect.scoped(prog)).then(() => console.log("done"), (e) => console.error("ERR", e))
