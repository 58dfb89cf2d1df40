// CPU time (user+system of this process) per launch → shutdown cycle, library vs bare, alternating (issue 17).
import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
import { launchBare } from "../bench/bare.js"
const N = Number(process.argv[2] ?? 40)
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const lib: number[] = [], bare: number[] = []
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < N + 5; i++) {
    let c = cpu()
    yield* Effect.scoped(Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false }))
    if (i >= 5) lib.push(cpu() - c)
    c = cpu()
    const b = yield* Effect.promise(() => launchBare())
    yield* Effect.promise(() => b.quit())
    if (i >= 5) bare.push(cpu() - c)
  }
  console.log(JSON.stringify({ lib_cpu_ms: med(lib), bare_cpu_ms: med(bare) }))
}))
