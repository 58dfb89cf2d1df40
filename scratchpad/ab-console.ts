// A/B of the demo guest's launch with its console (issue 17): A = AB_BEFORE's src, B = AB_AFTER's (or this
// checkout's); spawn → QMP ready and spawn → SeaBIOS's banner on the console, order alternating. Swap the copies
// and run again (see ab.ts on the side bias). npx tsx scratchpad/ab-console.ts 40
import { Effect } from "effect"
import * as MachineHere from "../src/Machine.js"
const N = Number(process.argv[2] ?? 20)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const main = async () => {
  const A = (await import(`${process.env.AB_BEFORE ?? "/work/wt-before"}/src/Machine.js`)) as typeof MachineHere
  const B = process.env.AB_AFTER === undefined ? MachineHere : (await import(`${process.env.AB_AFTER}/src/Machine.js`)) as typeof MachineHere
  const res: Record<string, { ready: number[]; banner: number[] }> = { A: { ready: [], banner: [] }, B: { ready: [], banner: [] } }
  const round = (k: "A" | "B", M: typeof MachineHere) => Effect.scoped(Effect.gen(function*() {
    const t0 = performance.now()
    const vm = yield* M.launch({ machineType: "pc,graphics=off", args: ["-nic", "none", "-m", "64"], console: {}, dieWithParent: false })
    const ready = performance.now() - t0
    yield* (yield* vm.console).waitFor("SeaBIOS", { timeout: "30 seconds" })
    res[k]!.ready.push(ready); res[k]!.banner.push(performance.now() - t0)
  }))
  await Effect.runPromise(Effect.gen(function*() {
    for (let i = 0; i < N + 3; i++) {
      if (i === 3) { res.A = { ready: [], banner: [] }; res.B = { ready: [], banner: [] } }
      if (i % 2) { yield* round("A", A); yield* round("B", B) } else { yield* round("B", B); yield* round("A", A) }
    }
  }))
  const paired = (a: number[], b: number[]) => +median(a.map((x, i) => x - b[i]!)).toFixed(2)
  console.log(JSON.stringify({
    A: { ready: +median(res.A!.ready).toFixed(2), banner: +median(res.A!.banner).toFixed(2) },
    B: { ready: +median(res.B!.ready).toFixed(2), banner: +median(res.B!.banner).toFixed(2) },
    B_minus_A: { ready: paired(res.B!.ready, res.A!.ready), banner: paired(res.B!.banner, res.A!.banner) }
  }))
}
void main()
