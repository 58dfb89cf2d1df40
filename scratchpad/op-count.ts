// Effect operations run per launch → shutdown cycle, by op code (issue 17). Uses the runtime's op supervision.
import { Effect, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import * as Machine from "../src/Machine.js"
const byOp = new Map<string, number>()
let total = 0
let phase = "launch"
;(globalThis as any).__qmT = (label: string) => { phase = label }
const byPhase = new Map<string, number>()
class Counting extends Supervisor.AbstractSupervisor<void> {
  value = Effect.void
  override onEffect(_fiber: unknown, effect: any) {
    total++
    const op = String(effect?._op ?? "?")
    byOp.set(op, (byOp.get(op) ?? 0) + 1)
    byPhase.set(phase, (byPhase.get(phase) ?? 0) + 1)
  }
}
const N = 20
const cycle = Effect.scoped(Effect.gen(function*() {
  phase = "launch"
  yield* Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })
  phase = "shutdown"
}))
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < 3; i++) yield* cycle
  total = 0; byOp.clear(); byPhase.clear()
  for (let i = 0; i < N; i++) yield* cycle
}).pipe(Effect.supervised(new Counting()), Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision)))).then(() => {
  console.log("ops per cycle", total / N, Object.fromEntries([...byPhase].map(([k, v]) => [k, v / N])))
  console.log([...byOp].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}:${(v / N).toFixed(0)}`).join(" "))
})
