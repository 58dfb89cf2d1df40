// What a timeout costs around a step that waits ~20 ms for I/O (issue 17): Effect.timeoutFail against a
// timer fiber that fails the awaited Deferred (the awaiting fiber is not forked or raced).
import { Deferred, Effect, Exit, Fiber } from "effect"
import * as Timeout from "../src/internal/timeout.js"
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const wait20 = (onFire: () => void) => Effect.async<void>((resume) => { setTimeout(() => { onFire(); resume(Effect.void) }, 20) })
const plain = Effect.gen(function*() {
  let fired = 0
  yield* wait20(() => { fired = performance.now() })
  return performance.now() - fired
})
const raced = Effect.gen(function*() {
  let fired = 0
  yield* Effect.timeoutFail(wait20(() => { fired = performance.now() }), { duration: "30 seconds", onTimeout: () => "t" })
  return performance.now() - fired
})
const timerFiber = Effect.scoped(Effect.gen(function*() {
  let fired = 0
  const d = yield* Deferred.make<void, string>()
  yield* Effect.forkScoped(Effect.zipRight(Effect.sleep("30 seconds"), Deferred.fail(d, "t")))
  setTimeout(() => { fired = performance.now(); Deferred.unsafeDone(d, Exit.void) }, 20)
  yield* Deferred.await(d)
  return performance.now() - fired
}))
const timerFiberLeft = Effect.gen(function*() {
  let fired = 0
  const d = yield* Deferred.make<void, string>()
  const f = yield* Effect.forkDaemon(Effect.zipRight(Effect.sleep("30 seconds"), Deferred.fail(d, "t")))
  setTimeout(() => { fired = performance.now(); Deferred.unsafeDone(d, Exit.void) }, 20)
  yield* Deferred.await(d)
  const r = performance.now() - fired
  yield* Fiber.interruptFork(f)
  return r
})
const forkJoin = Effect.gen(function*() {
  let fired = 0
  const f = yield* Effect.fork(wait20(() => { fired = performance.now() }))
  yield* Fiber.join(f)
  return performance.now() - fired
})
const forkAwait = Effect.gen(function*() {
  let fired = 0
  const f = yield* Effect.fork(wait20(() => { fired = performance.now() }))
  yield* Fiber.await(f)
  return performance.now() - fired
})
const cheap = Effect.gen(function*() {
  let fired = 0
  yield* Timeout.timeoutFail(wait20(() => { fired = performance.now() }), { duration: "30 seconds", onTimeout: () => "t" })
  return performance.now() - fired
})
Effect.runPromise(Effect.gen(function*() {
  const r: Record<string, number[]> = { cheap: [], plain: [], raced: [], timerFiberScoped: [], timerFiberLeft: [], forkJoin: [], forkAwait: [] }
  for (let i = 0; i < 100; i++) {
    r.plain!.push(yield* plain); r.raced!.push(yield* raced); r.timerFiberScoped!.push(yield* timerFiber); r.timerFiberLeft!.push(yield* timerFiberLeft); r.forkJoin!.push(yield* forkJoin); r.cheap!.push(yield* cheap); r.forkAwait!.push(yield* forkAwait)
  }
  console.log(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, med(v).toFixed(3)])))
}))
