// Allocation per launch → shutdown cycle grouped by the nearest frame outside Effect's runtime core (issue 17).
import { Effect } from "effect"
import * as Inspector from "node:inspector/promises"
import * as Machine from "../dist/Machine.js"
const N = Number(process.argv[2] ?? 50)
const cycle = () => Effect.runPromise(Effect.scoped(Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })))
for (let i = 0; i < 10; i++) await cycle()
const s = new Inspector.Session(); s.connect()
await s.post("HeapProfiler.startSampling", { samplingInterval: 128, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true })
for (let i = 0; i < N; i++) await cycle()
const { profile } = await s.post("HeapProfiler.stopSampling")
const core = /effect\/dist\/esm\/(internal\/(fiberRuntime|core|core-effect|fiberRefs|fiberRefs\/patch|runtimeFlags|cause|effectable|pipeable|fiberId|context|opCodes.*)|Function|Utils|Pipeable|Effectable|Context|HashMap|HashSet|Chunk|Equal|Hash|Option|Either|Data|Predicate|List|MutableRef|Array|FiberId|FiberRefs)\.js/
const by = new Map()
let total = 0
const name = (n) => `${n.callFrame.functionName || "(anon)"} ${String(n.callFrame.url).replace(/.*\/(dist|node_modules)\//, "$1/")}:${n.callFrame.lineNumber + 1}`
const walk = (node, nearest) => {
  const url = String(node.callFrame.url)
  const here = url !== "" && !core.test(url) && !url.startsWith("node:") ? name(node) : nearest
  total += node.selfSize
  if (node.selfSize > 0) by.set(here ?? "(root)", (by.get(here ?? "(root)") ?? 0) + node.selfSize)
  for (const c of node.children) walk(c, here)
}
walk(profile.head, undefined)
console.log(`total ${(total / N / 1024).toFixed(1)} KB per cycle`)
for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((v / N / 1024).toFixed(1).padStart(7), k)
// Who calls the context diff: the stacks above contextPatch.js allocations.
const stacks = new Map()
const walk2 = (node, path) => {
  const here = [...path, name(node)]
  if (node.selfSize > 0 && /contextPatch|runtime\.js:31/.test(name(node))) {
    const key = here.slice(-9, -1).filter((f) => !/^\(root\)/.test(f)).join(" < ")
    stacks.set(key, (stacks.get(key) ?? 0) + node.selfSize)
  }
  for (const c of node.children) walk2(c, here)
}
walk2(profile.head, [])
for (const [k, v] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 6)) console.log((v / N / 1024).toFixed(1).padStart(7), k, "\n")
