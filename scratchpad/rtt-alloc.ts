// Where do the library's per-command allocations come from? (issue 17 tail latency)
import { Effect } from "effect"
import * as Inspector from "node:inspector"
import * as Machine from "../src/Machine.js"

const session = new Inspector.Session()
session.connect()
const post = (method: string, params?: object) =>
  new Promise<any>((res, rej) => session.post(method, params ?? {}, (e, r) => e ? rej(e) : res(r)))

const N = Number(process.argv[2] ?? 5000)
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"] })
  const qmp = yield* vm.qmp
  for (let i = 0; i < 500; i++) yield* qmp.execute("query-status")
  yield* Effect.promise(() => post("HeapProfiler.startSampling", { samplingInterval: 512, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true }))
  for (let i = 0; i < N; i++) yield* qmp.execute("query-status")
  const { profile } = yield* Effect.promise(() => post("HeapProfiler.stopSampling"))
  const byFn = new Map<string, number>()
  let total = 0
  const walk = (node: any, stack: string) => {
    const name = `${node.callFrame.functionName || "(anon)"} ${String(node.callFrame.url).replace(/.*\/(node_modules\/)?/, "")}:${node.callFrame.lineNumber + 1}`
    total += node.selfSize
    if (node.selfSize > 0) byFn.set(name, (byFn.get(name) ?? 0) + node.selfSize)
    for (const c of node.children) walk(c, name)
  }
  walk(profile.head, "")
  console.log(`total ${(total / N).toFixed(0)} bytes per command`)
  for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((v / N).toFixed(0).padStart(6), k)
})))
