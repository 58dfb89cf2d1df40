// Steady-state CPU profile of library launch → shutdown cycles from the compiled package (issue 17).
// node scratchpad/cycle-prof.mjs N out.cpuprofile
import { Effect } from "effect"
import * as Inspector from "node:inspector/promises"
import * as fs from "node:fs"
import * as Machine from "../dist/Machine.js"
const N = Number(process.argv[2] ?? 100)
const cycle = () => Effect.runPromise(Effect.scoped(Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })))
for (let i = 0; i < 10; i++) await cycle()
const s = new Inspector.Session(); s.connect()
await s.post("Profiler.enable"); await s.post("Profiler.setSamplingInterval", { interval: 50 }); await s.post("Profiler.start")
const c0 = process.cpuUsage(); const t0 = performance.now()
for (let i = 0; i < N; i++) await cycle()
const c = process.cpuUsage(c0)
const { profile } = await s.post("Profiler.stop")
fs.writeFileSync(process.argv[3] ?? "/tmp/prof/cycle.cpuprofile", JSON.stringify(profile))
console.log(JSON.stringify({ cycles: N, cpu_ms_per_cycle: (c.user + c.system) / 1000 / N, wall_ms_per_cycle: (performance.now() - t0) / N }))
