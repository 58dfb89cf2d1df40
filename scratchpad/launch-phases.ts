/**
 * Where a launch and a shutdown spend their time: the spans' own durations
 * (a recording tracer), averaged over N `-machine none` cycles, beside a bare
 * spawn → greeting → capabilities → quit → exit. `npx tsx scratchpad/launch-phases.ts [n]`
 */
import { Effect, Tracer } from "effect"
import { launchBare } from "../bench/bare.js"
import * as Machine from "../src/Machine.js"

const n = Number(process.argv[2] ?? 30)
const durations = new Map<string, Array<number>>()
const inner = Effect.runSync(Effect.tracer)
const tracer = Tracer.make({
  span: (...args) => {
    const span = inner.span(...args)
    const end = span.end.bind(span)
    span.end = (endTime, exit) => {
      end(endTime, exit)
      const list = durations.get(span.name) ?? []
      list.push(Number(endTime - (span.status as { startTime: bigint }).startTime) / 1e6)
      durations.set(span.name, list)
    }
    return span
  },
  context: (f, fiber) => inner.context(f, fiber)
})
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const main = Effect.gen(function*() {
  const bare: Array<number> = []
  const bareQuit: Array<number> = []
  const cycle: Array<number> = []
  for (let i = 0; i < n + 3; i++) {
    const t0 = performance.now()
    const b = yield* Effect.promise(() => launchBare())
    const t1 = performance.now()
    yield* Effect.promise(() => b.quit())
    const t2 = performance.now()
    if (i >= 3) { bare.push(t1 - t0); bareQuit.push(t2 - t1) }
    const t3 = performance.now()
    yield* Effect.scoped(Effect.gen(function*() {
      const vm = yield* Machine.launch({ machineType: "none", args: ["-nodefaults"], dieWithParent: process.env.SETPRIV === "1" })
      yield* vm.shutdown()
    })).pipe(Effect.withTracer(tracer))
    if (i >= 3) cycle.push(performance.now() - t3)
    else durations.clear()
  }
  const out: Record<string, number> = { bare_launch_ms: median(bare), bare_quit_ms: median(bareQuit), library_cycle_ms: median(cycle) }
  for (const [name, list] of durations) out[name] = Math.round(median(list) * 100) / 100
  console.log(JSON.stringify(out, null, 1))
})
Effect.runPromise(main)
