// Lists the Effect operations of one launch (and optionally shutdown) in order, with a snippet of what each runs (issue 17).
// `npx tsx scratchpad/op-list.ts [launch|shutdown|postExit]`
import { Effect, RuntimeFlags, RuntimeFlagsPatch, Supervisor } from "effect"
import * as Machine from "../src/Machine.js"
const want = process.argv[2] ?? "launch"
let phase = "off"
// With `scratchpad/stamps-insert.py` applied, `postExit` lists what runs after QEMU's exit event.
const counts = new Map<string, number>()
let segment = "launch:before spawn"
;(globalThis as any).__qmT = (label: string) => {
  if (label === "P.exitEvent" && phase === "shutdown") phase = "postExit"
  if (label === "P.spawn0") segment = "launch:spawn to QEMU's answer"
  if (label === "R.sessionHandshake") segment = "launch:after QEMU's answer"
}
const list: Array<string> = []
const snip = (f: unknown) => typeof f === "function" ? f.toString().replace(/\s+/g, " ").slice(0, 110) : ""
class Listing extends Supervisor.AbstractSupervisor<void> {
  value = Effect.void
  override onEffect(fiber: any, effect: any) {
    const seg = phase === "launch" ? segment : phase
    counts.set(seg, (counts.get(seg) ?? 0) + 1)
    if (phase !== want) return
    const op = String(effect?._op ?? "?")
    const i0 = effect?.effect_instruction_i0, i1 = effect?.effect_instruction_i1
    list.push(`${String(fiber.id().id).padStart(4)} ${op.padEnd(20)} ${snip(i0) || snip(i1) || (typeof i0 === "object" && i0 !== null ? (i0.key ?? i0._op ?? i0.constructor?.name ?? "") : String(i0 ?? "")).toString().slice(0, 80)}`)
  }
}
const cycle = Effect.scoped(Effect.gen(function*() {
  phase = "launch"; segment = "launch:before spawn"
  yield* Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false })
  phase = "shutdown"
})).pipe(Effect.ensuring(Effect.sync(() => { phase = "off" })))
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < 3; i++) yield* cycle
  list.length = 0; counts.clear()
  yield* cycle
}).pipe(Effect.supervised(new Listing()), Effect.withRuntimeFlagsPatch(RuntimeFlagsPatch.enable(RuntimeFlags.OpSupervision)))).then(() => {
  console.log(list.join("\n"))
  console.log(list.length, "ops"); console.log(Object.fromEntries(counts))
})
