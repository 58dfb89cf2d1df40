// A/B of launch → shutdown cycles (issue 17): bare client, A = the library at another checkout (AB_BEFORE, a
// worktree path), B = this checkout's src (or AB_AFTER, another worktree); order rotates each round. Prints
// paired-median overheads over bare (ready, shutdown) and process CPU per cycle for each side.
// The side a copy sits on is not neutral: with the same code on both sides (A/A), B read 0.2–0.45 ms more CPU
// per cycle than A and up to 0.44 ms more ready overhead, also with both copies from worktrees. Run it twice
// with the copies swapped (AB_BEFORE/AB_AFTER) and take the mean of the two differences.
import { Effect } from "effect"
import * as MachineHere from "../src/Machine.js"
import { launchBare } from "../bench/bare.js"
const N = Number(process.argv[2] ?? 30)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }
const main = async () => {
  const MachineA = (await import(`${process.env.AB_BEFORE ?? "/work/wt-before"}/src/Machine.js`)) as typeof MachineHere
  const MachineB = process.env.AB_AFTER === undefined
    ? MachineHere
    : (await import(`${process.env.AB_AFTER}/src/Machine.js`)) as typeof MachineHere
  const ready: Record<string, number[]> = { bare: [], A: [], B: [] }
  const shut: Record<string, number[]> = { bare: [], A: [], B: [] }
  const cpus: Record<string, number[]> = { bare: [], A: [], B: [] }
  const lib = (k: "A" | "B", M: typeof MachineHere) => Effect.gen(function*() {
    const c = cpu(); const t0 = performance.now(); let r = 0
    yield* Effect.scoped(Effect.tap(M.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: false }), () => { r = performance.now() }))
    ready[k]!.push(r - t0); shut[k]!.push(performance.now() - r); cpus[k]!.push(cpu() - c)
  })
  const rounds: Record<string, Effect.Effect<void>> = {
    bare: Effect.promise(async () => { const c = cpu(); const t0 = performance.now(); const q = await launchBare(); const r = performance.now(); await q.quit(); ready.bare!.push(r - t0); shut.bare!.push(performance.now() - r); cpus.bare!.push(cpu() - c) }),
    A: lib("A", MachineA), B: lib("B", MachineB)
  }
  const orders = [["bare", "A", "B"], ["B", "A", "bare"], ["A", "B", "bare"], ["bare", "B", "A"], ["A", "bare", "B"], ["B", "bare", "A"]]
  const W = 5
  await Effect.runPromise(Effect.gen(function*() { for (let i = 0; i < N + W; i++) for (const k of orders[i % 6]!) yield* rounds[k]! }))
  const paired = (a: number[], b: number[]) => +median(a.slice(W).map((x, i) => x - b[i + W]!)).toFixed(2)
  console.log(JSON.stringify({
    bare: { ready: +median(ready.bare!.slice(W)).toFixed(2), shutdown: +median(shut.bare!.slice(W)).toFixed(2), cpu: +median(cpus.bare!.slice(W)).toFixed(2) },
    A: { ready: paired(ready.A!, ready.bare!), shutdown: paired(shut.A!, shut.bare!), cpu: +median(cpus.A!.slice(W)).toFixed(2) },
    B: { ready: paired(ready.B!, ready.bare!), shutdown: paired(shut.B!, shut.bare!), cpu: +median(cpus.B!.slice(W)).toFixed(2) },
    B_minus_A: { ready: paired(ready.B!, ready.A!), shutdown: paired(shut.B!, shut.A!) }
  }))
}
void main()
