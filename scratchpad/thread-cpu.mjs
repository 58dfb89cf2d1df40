// CPU per thread of this process (from /proc/self/task) across N launch → shutdown cycles: library vs bare (issue 17).
// Needs `npm run build` and the bare client bundled: npx esbuild bench/bare.ts --format=esm --platform=node --outfile=scratchpad/bare-dist.mjs
import { Effect } from "effect"
import * as fs from "node:fs"
import * as Machine from "../dist/Machine.js"
import { launchBare } from "./bare-dist.mjs"
const N = Number(process.argv[2] ?? 50)
const mode = process.argv[3] ?? "lib"
const threads = () => {
  const out = new Map()
  for (const tid of fs.readdirSync("/proc/self/task")) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, "utf8")
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      out.set(`${comm}#${tid}`, { u: Number(f[11]), s: Number(f[12]) })
    } catch {}
  }
  return out
}
const cycle = mode === "lib"
  ? () => Effect.runPromise(Effect.scoped(Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })))
  : async () => { const b = await launchBare(); await b.quit() }
for (let i = 0; i < 10; i++) await cycle()
const a = threads()
for (let i = 0; i < N; i++) await cycle()
const b = threads()
const byComm = new Map()
for (const [k, v] of b) {
  const o = a.get(k) ?? { u: 0, s: 0 }
  const comm = k.endsWith(`#${process.pid}`) ? "main" : "other"
  const e = byComm.get(comm) ?? { u: 0, s: 0 }
  e.u += v.u - o.u; e.s += v.s - o.s
  byComm.set(comm, e)
}
const tick = 10 // ms per clock tick (USER_HZ 100)
console.log(mode, Object.fromEntries([...byComm].map(([k, v]) => [k, `user ${(v.u * tick / N).toFixed(2)} sys ${(v.s * tick / N).toFixed(2)} ms/cycle`])))
