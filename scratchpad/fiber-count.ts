// Fibers started per launch → shutdown cycle, with where they were forked (issue 17).
import { Effect, Supervisor } from "effect"
import * as Machine from "../src/Machine.js"
let count = 0
const sites = new Map<string, number>()
class Counting extends Supervisor.AbstractSupervisor<void> {
  value = Effect.void
  override onStart() {
    count++
    const stack = (new Error().stack ?? "").split("\n").filter((l) => l.includes("/src/") && !l.includes("fiber-count")).slice(0, 3).map((l) => l.trim().replace(/.*\/src\//, "")).join(" < ")
    sites.set(stack, (sites.get(stack) ?? 0) + 1)
  }
}
const N = 20
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < N; i++) yield* Effect.scoped(Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false }))
}).pipe(Effect.supervised(new Counting()))).then(() => {
  console.log("fibers per cycle", count / N)
  for (const [k, v] of [...sites].sort((a, b) => b[1] - a[1])) console.log((v / N).toFixed(2), k || "(no src frame)")
})
