import * as __nodefs from "node:fs"; (globalThis as any).__fs = __nodefs
// Per-step timestamps of launch → shutdown (issue 17), with temporary `__qmT` stamps in src (not committed).
import { Effect, Layer } from "effect"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as Machine from "../src/Machine.js"
import { launchBare } from "../bench/bare.js"
const N = Number(process.argv[2] ?? 30)
const T00 = { v: 0 }
const rows: Array<Record<string, number>> = []
const bareRows: Array<Record<string, number>> = []
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
let t: Record<string, number> = {}
let t0 = 0
let replies = 0
;(globalThis as any).__qmT = (label: string) => { if (!(label in t)) { t[label] = performance.now() - t0; const u = process.cpuUsage(); t["cpu:" + label] = (u.user + u.system) / 1000 - c0 } }
let c0 = 0
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < N + 5; i++) {
    yield* Effect.promise(() => new Promise((r) => setTimeout(r, Number(process.env.GAP ?? 0))))
    t = {}; replies = 0
    t0 = performance.now()
    { const u = process.cpuUsage(); c0 = (u.user + u.system) / 1000 }
    yield* Effect.scoped(Effect.gen(function*() {
      yield* Machine.launch({
        machineType: "none", args: ["-nodefaults"], dieWithParent: false,
        qmp: { onTraffic: (dir, msg) => {
          const m = msg as any
          const key = dir === "receive" ? ("QMP" in m ? "Q.greeting" : "event" in m ? `Q.ev` : `Q.reply${++replies}`) : `Q.send.${m.execute}`
          ;(globalThis as any).__qmT(key)
        } }
      })
      ;(globalThis as any).__qmT("M.ready")
    }).pipe(Effect.tap(() => Effect.sync(() => (globalThis as any).__qmT("M.closeStart")))))
    ;(globalThis as any).__qmT("M.closed")
    if (i >= 5) rows.push(t)
    const b0 = performance.now()
    const bare = yield* Effect.promise(() => launchBare())
    const ready = performance.now() - b0
    yield* Effect.promise(() => bare.quit())
    if (i >= 5) bareRows.push({ ready, closed: performance.now() - b0 })
  }
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))]
  const meds = keys.map((k) => [k, median(rows.filter((r) => k in r).map((r) => r[k]!))] as const).sort((a, b) => a[1] - b[1])
  for (const [k, v] of meds) if (!k.startsWith("cpu:")) console.log(k.padEnd(20), v.toFixed(2), "cpu", (median(rows.filter((r) => ("cpu:" + k) in r).map((r) => r["cpu:" + k]!)) ?? NaN).toFixed(2))
  console.log((globalThis as any).__qmEntries)
  console.log("bare ready", median(bareRows.map((r) => r.ready!)).toFixed(2), "closed", median(bareRows.map((r) => r.closed!)).toFixed(2))
}).pipe((e) => process.env.PROVIDED ? Effect.provide(e, Layer.merge(NodeFileSystem.layer, NodePath.layer)) : e))
