import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch({ machineType: process.argv[2] ?? "none", args: ["-nodefaults"] })
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now()
    const r = yield* vm.executeRaw("device_add", { driver: "no-such-device" })
    console.log(`device_add #${i}: ${(performance.now() - t0).toFixed(1)} ms`, JSON.stringify(r).slice(0, 100))
  }
})))
