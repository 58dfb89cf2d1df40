import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
const mb = () => (process.memoryUsage().rss / 1e6).toFixed(1)
console.log("after import", mb(), "heap", (process.memoryUsage().heapUsed / 1e6).toFixed(1))
let peak = 0
const t = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss) }, 20)
const n = Number(process.argv[2] ?? 100)
Effect.runPromise(Effect.gen(function*() {
  const t0 = performance.now()
  yield* Effect.forEach(Array.from({ length: n }), () => Effect.scoped(Effect.gen(function*() {
    const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"], launchTimeout: "120 seconds" })
    yield* vm.execute("query-status")
  })), { concurrency: "unbounded", discard: true })
  clearInterval(t)
  console.log("wall", (performance.now() - t0).toFixed(0), "peak", (peak / 1e6).toFixed(1), "end", mb(), "heap", (process.memoryUsage().heapUsed / 1e6).toFixed(1))
}))
