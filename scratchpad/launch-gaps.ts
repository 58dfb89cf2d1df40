// Where the library's launch time goes around QEMU's own start (issue 17): timestamps from the traffic hook.
import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
import { launchBare } from "../bench/bare.js"
const N = 30
const rows: Array<Record<string, number>> = []
const bareRows: Array<number> = []
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < N + 5; i++) {
    const t: Record<string, number> = {}
    const t0 = performance.now()
    yield* Effect.scoped(Effect.gen(function*() {
      const vm = yield* Machine.launch({
        machineType: "none", args: ["-nodefaults"], dieWithParent: false,
        qmp: { onTraffic: (dir, msg) => {
          const key = dir === "receive" && typeof msg === "object" && msg !== null && "QMP" in msg ? "greeting" : `${dir}${Object.keys(t).length}`
          t[key] = performance.now() - t0
        } }
      })
      t.ready = performance.now() - t0
      void vm
    }))
    t.closed = performance.now() - t0
    if (i >= 5) rows.push(t)
    const b0 = performance.now()
    const bare = yield* Effect.promise(() => launchBare())
    const ready = performance.now() - b0
    yield* Effect.promise(() => bare.quit())
    if (i >= 5) bareRows.push(ready)
  }
  const keys = Object.keys(rows[0]!)
  for (const k of keys) console.log(k.padEnd(10), median(rows.map((r) => r[k]!)).toFixed(2))
  console.log("bare ready", median(bareRows).toFixed(2))
}))
