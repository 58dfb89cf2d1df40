// Is the first Effect step after QEMU's start/exit slow because the CPU is cold (issue 17)? Times
// `Effect.scoped(Effect.void)`-like entry right after a bare QEMU cycle, with and without a warm-up just before;
// and after no QEMU but a sweep of 64 MB in this process (evicting the caches): is it the caches?
import { Effect } from "effect"
import { launchBare } from "../bench/bare.js"
const N = Number(process.argv[2] ?? 40)
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const rows: Record<string, number[]> = { cold: [], warm: [], coldPlain: [], sweptNoQemu: [] }
const big = new Uint8Array(64 * 1024 * 1024)
const sweep = () => { let x = 0; for (let i = 0; i < big.length; i += 64) x += big[i]!++; return x }
const entry = Effect.scoped(Effect.gen(function*() { yield* Effect.void; yield* Effect.scope }))
const plain = () => { const m = new Map<number, number>(); for (let i = 0; i < 50; i++) m.set(i, i * 2); return m.size }
Effect.runPromise(Effect.gen(function*() {
  for (let i = 0; i < N; i++) {
    for (const mode of ["cold", "warm", "coldPlain", "sweptNoQemu"] as const) {
      if (mode === "sweptNoQemu") { yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5))); sweep() } else {
      const q = yield* Effect.promise(() => launchBare())
      yield* Effect.promise(() => q.quit()) }
      if (mode === "warm") for (let k = 0; k < 20; k++) Effect.runSync(entry)
      if (mode === "coldPlain") { const t0 = performance.now(); plain(); rows[mode]!.push(performance.now() - t0); continue }
      const t0 = performance.now()
      yield* entry
      rows[mode]!.push(performance.now() - t0)
    }
  }
  console.log(JSON.stringify(Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, median(v).toFixed(4)]))))
}))
