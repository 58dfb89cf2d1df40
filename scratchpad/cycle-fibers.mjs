// Fibers started per launch → shutdown cycle, by the span/where they are forked (issue 17).
import { Effect, Supervisor, RuntimeFlags, RuntimeFlagsPatch } from "effect"
import * as Machine from "../dist/Machine.js"
const N = 20
let started = 0, ops = 0
const byOp = new Map()
class Counting extends Supervisor.AbstractSupervisor {
  value = Effect.void
  onStart() { started++ }
  onEffect(fiber, effect) { ops++; const k = effect?._op ?? "?"; byOp.set(k, (byOp.get(k) ?? 0) + 1) }
}
const sup = new Counting()
const cycle = () => Effect.runPromise(Effect.scoped(Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })).pipe(Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision)), Effect.supervised(sup)))
for (let i = 0; i < 5; i++) await cycle()
started = 0; ops = 0; byOp.clear()
for (let i = 0; i < N; i++) await cycle()
console.log(Object.fromEntries([...byOp].map(([k,v])=>[k,v/N]))); console.log({ fibers_per_cycle: started / N, effect_evaluations_per_cycle: ops / N })
