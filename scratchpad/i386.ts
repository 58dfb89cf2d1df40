import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
import * as Qapi from "../src/Qapi.js"
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch({ binary: "qemu-system-i386", machineType: "none", args: ["-nodefaults"] })
  const r = yield* Qapi.checkDrift(yield* vm.qmp)
  console.log(r.sameBuild, r.identical, Qapi.formatDrift(r))
}))).catch(e => console.error("ERR", e))
