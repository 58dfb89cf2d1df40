import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const acc: Record<string, number[]> = {}
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < 33; i++) {
    yield* Effect.scoped(Effect.gen(function*() {
      const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })
      ;(globalThis as any).__t = []
      const t0 = performance.now()
      yield* vm.shutdown()
      const t1 = performance.now()
      if (i < 3) return
      let prev = t0
      for (const [k, t] of (globalThis as any).__t as Array<[string, number]>) { (acc[k] ??= []).push(t - prev); prev = t }
      ;(acc["end"] ??= []).push(t1 - prev)
    }))
  }
  for (const [k, v] of Object.entries(acc)) console.log(k.padEnd(12), median(v).toFixed(2))
}))
