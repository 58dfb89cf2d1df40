// Bytes allocated per launch → shutdown cycle (sampling heap profiler, minor-GC objects included), by our nearest frame (issue 17).
import { Effect } from "effect"
import * as Inspector from "node:inspector/promises"
import * as Machine from "../dist/Machine.js"
const N = Number(process.argv[2] ?? 50)
const cycle = () => Effect.runPromise(Effect.scoped(Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })))
for (let i = 0; i < 10; i++) await cycle()
const s = new Inspector.Session(); s.connect()
await s.post("HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true })
for (let i = 0; i < N; i++) await cycle()
const { profile } = await s.post("HeapProfiler.stopSampling")
const own = new Map(), self = new Map()
let total = 0
const name = (n) => `${n.callFrame.functionName || "(anon)"} ${String(n.callFrame.url).replace(/.*\/(dist|node_modules)\//, "$1/")}:${n.callFrame.lineNumber + 1}`
const walk = (node, ours) => {
  const url = String(node.callFrame.url)
  const here = /\/main\/dist\//.test(url) ? name(node) : ours
  total += node.selfSize
  if (node.selfSize > 0) {
    own.set(here ?? "(outside)", (own.get(here ?? "(outside)") ?? 0) + node.selfSize)
    self.set(name(node), (self.get(name(node)) ?? 0) + node.selfSize)
  }
  for (const c of node.children) walk(c, here)
}
walk(profile.head, undefined)
console.log(`total ${(total / N / 1024).toFixed(1)} KB per cycle`)
console.log("--- by nearest library frame")
for (const [k, v] of [...own].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((v / N / 1024).toFixed(1).padStart(7), k)
console.log("--- self")
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log((v / N / 1024).toFixed(1).padStart(7), k)
