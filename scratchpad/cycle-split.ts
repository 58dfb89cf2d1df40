/** Wall time of a launch → shutdown cycle, split at the calls (no spans): `npx tsx scratchpad/cycle-split.ts [n]`. */
import { Effect } from "effect"
import * as Machine from "../src/Machine.js"

const n = Number(process.argv[2] ?? 30)
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
Effect.runPromise(Effect.gen(function*() {
  const parts: Record<string, Array<number>> = { launch: [], shutdown: [], scopeEnd: [], total: [] }
  for (let i = 0; i < n + 3; i++) {
    const t0 = performance.now()
    let t1 = 0, t2 = 0
    yield* Effect.scoped(Effect.gen(function*() {
      const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: process.env.SETPRIV === "1" })
      t1 = performance.now()
      yield* vm.shutdown()
      t2 = performance.now()
    }))
    const t3 = performance.now()
    if (i < 3) continue
    parts.launch!.push(t1 - t0); parts.shutdown!.push(t2 - t1); parts.scopeEnd!.push(t3 - t2); parts.total!.push(t3 - t0)
  }
  console.log(JSON.stringify(Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, Math.round(median(v) * 100) / 100]))))
}))
