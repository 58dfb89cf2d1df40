/**
 * CPU time (user + system) this process spends per sequential `query-status`
 * on a `-machine none` QEMU: steadier than wall-clock latency on a shared
 * machine. `npx tsx scratchpad/cpu-per-command.ts [n]`
 */
import { Effect } from "effect"
import * as Machine from "../src/Machine.js"

const n = Number(process.argv[2] ?? 20000)
Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })
  const qmp = yield* vm.qmp
  for (let i = 0; i < Number(process.env.WARMUP ?? 2000); i++) yield* qmp.execute("query-status")
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < n; i++) yield* qmp.execute("query-status")
  const cpu = process.cpuUsage(cpu0)
  const wall = performance.now() - t0
  console.log(JSON.stringify({ n, cpu_us_per_command: Math.round((cpu.user + cpu.system) / n * 10) / 10, wall_us_per_command: Math.round(wall * 1000 / n) }))
})))
