import { Arbitrary, FastCheck, Schema } from "effect"
import { commands, events } from "../src/generated/qapi.js"
const t0 = performance.now()
let ok = 0, failed: string[] = []
for (const [name, c] of Object.entries(commands)) {
  try {
    const arb = Arbitrary.make((c as any).result as Schema.Schema<unknown>)
    const [v] = FastCheck.sample(arb, { seed: 42, numRuns: 1 })
    if (!Schema.is((c as any).result)(v)) failed.push(name + " (invalid)")
    else ok++
  } catch (e) { failed.push(`${name}: ${(e as Error).message.slice(0, 80)}`) }
}
console.log("commands ok", ok, "failed", failed.length, failed.slice(0, 5), (performance.now() - t0).toFixed(0), "ms")
let eok = 0; const efail: string[] = []
for (const [name, s] of Object.entries(events)) {
  try { FastCheck.sample(Arbitrary.make(s as any), { seed: 1, numRuns: 1 }); eok++ } catch (e) { efail.push(name) }
}
console.log("events ok", eok, "failed", efail)
