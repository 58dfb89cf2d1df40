/**
 * The launch's and shutdown's cheaper `timeoutFail`: Effect's contract (value,
 * failure, timeout after interrupting `self`, the caller's interruption
 * reaching both), and no timer left behind when `self` ends first, even from
 * an uninterruptible region (a sleeping timer would keep Node alive for the
 * whole timeout after a script's last machine is gone).
 */
import { describe, expect, it, vi } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber, identity, Option, Supervisor, TestClock } from "effect"
import * as Timeout from "../../src/internal/timeout.js"

const within = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Timeout.timeoutFail(self, { duration: "1 hour", onTimeout: () => "timed out" as const })

/** Runs `effect` supervised; returns its exit and whether any fiber it forked is still running. */
const tracked = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const supervisor = yield* Supervisor.track
    const exit = yield* Effect.exit(Effect.supervised(effect, supervisor))
    // An interrupted fiber ends at its next step: give them a few.
    let running = 0
    for (let step = 0; step < 10; step++) {
      yield* Effect.yieldNow()
      const fibers = yield* supervisor.value
      const polls = yield* Effect.forEach(fibers, (fiber) => Effect.map(Fiber.poll(fiber), Option.isNone))
      running = polls.filter(Boolean).length
      if (running === 0) break
    }
    return { exit, running }
  })

describe("internal/timeout", () => {
  it.effect("returns self's value and leaves no fiber running, also from an uninterruptible region", () =>
    Effect.gen(function*() {
      const plain = yield* tracked(within(Effect.succeed(1)))
      expect(plain).toEqual({ exit: Exit.succeed(1), running: 0 })
      const shielded = yield* tracked(Effect.uninterruptible(within(Effect.succeed(2))))
      expect(shielded).toEqual({ exit: Exit.succeed(2), running: 0 })
    }))

  it.effect("passes self's failure through", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(within(Effect.fail("boom" as const)))
      expect(error).toBe("boom")
    }))

  it.effect("past the duration: self is interrupted (its finalizer runs), then the timeout error", () =>
    Effect.gen(function*() {
      let finalized = false
      const fiber = yield* Effect.fork(
        within(Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => finalized = true))))
      )
      yield* TestClock.adjust("59 minutes")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 minute")
      expect(yield* Fiber.await(fiber)).toEqual(Exit.fail("timed out"))
      expect(finalized).toBe(true)
    }))

  it.effect("an uninterruptible self is waited for: the timeout error comes once it has stopped", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(within(Effect.uninterruptible(Deferred.await(release))))
      yield* TestClock.adjust("2 hours")
      expect(fiber.unsafePoll()).toBeNull()
      yield* Deferred.succeed(release, undefined)
      expect(yield* Fiber.await(fiber)).toEqual(Exit.fail("timed out"))
    }))

  it.effect("interrupting the caller interrupts self and the timer, and waits for self", () =>
    Effect.gen(function*() {
      let finalized = false
      const started = yield* Deferred.make<void>()
      const { running } = yield* tracked(Effect.gen(function*() {
        const fiber = yield* Effect.fork(within(
          Deferred.succeed(started, undefined).pipe(
            Effect.zipRight(Effect.never),
            Effect.onInterrupt(() => Effect.sync(() => finalized = true))
          )
        ))
        yield* Deferred.await(started)
        yield* Fiber.interrupt(fiber)
      }))
      expect(finalized).toBe(true)
      expect(running).toBe(0)
    }))

  describe("under the live clock (a plain timer)", () => {
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length

    it.live("past the duration: self is interrupted, then the timeout error", () =>
      Effect.gen(function*() {
        let finalized = false
        const exit = yield* Effect.exit(Timeout.timeoutFail(
          Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => finalized = true))),
          { duration: "20 millis", onTimeout: () => "timed out" as const }
        ))
        expect(exit).toEqual(Exit.fail("timed out"))
        expect(finalized).toBe(true)
      }))

    it.live("no timer is left once self ends, however it ends", () =>
      Effect.gen(function*() {
        const before = timers()
        const long = { duration: Duration.hours(1), onTimeout: () => "timed out" as const }
        expect(yield* Timeout.timeoutFail(Effect.succeed(1), long)).toBe(1)
        expect(yield* Effect.flip(Timeout.timeoutFail(Effect.fail("boom" as const), long))).toBe("boom")
        const fiber = yield* Effect.fork(Timeout.timeoutFail(Effect.never, long))
        yield* Effect.yieldNow()
        expect(timers()).toBe(before + 1)
        yield* Fiber.interrupt(fiber)
        expect(timers()).toBe(before)
      }))
  })

  describe("callbackWithin (a wait for a plain callback)", () => {
    /** A callback slot as a reader would hold one; counts what is registered. */
    const slot = () => {
      const callbacks = new Set<(exit: Exit.Exit<number, string>) => void>()
      return {
        callbacks,
        register: (done: (exit: Exit.Exit<number, string>) => void) => {
          callbacks.add(done)
          return () => void callbacks.delete(done)
        },
        fire: (exit: Exit.Exit<number, string>) => callbacks.forEach((done) => done(exit))
      }
    }
    const within = (duration: Duration.DurationInput) => ({ duration, onTimeout: () => "timed out" as const })

    it.live("gives the callback's value or failure; a callback made at once counts", () =>
      Effect.gen(function*() {
        const first = slot()
        const fiber = yield* Effect.fork(Timeout.callbackWithin(first.register, within("1 hour")))
        yield* Effect.yieldNow()
        first.fire(Exit.succeed(7))
        expect(yield* Fiber.join(fiber)).toBe(7)
        const second = slot()
        const failed = yield* Effect.fork(Timeout.callbackWithin(second.register, within("1 hour")))
        yield* Effect.yieldNow()
        second.fire(Exit.fail("boom"))
        expect(yield* Effect.flip(Fiber.join(failed))).toBe("boom")
        const atOnce = Timeout.callbackWithin<number, string, "timed out">((done) => {
          done(Exit.succeed(3))
          return () => {}
        }, within("1 hour"))
        expect(yield* atOnce).toBe(3)
      }))

    it.live("a callback made at once sets no timer (an event that has come already)", () =>
      Effect.gen(function*() {
        const spy = vi.spyOn(globalThis, "setTimeout")
        let timers = -1
        const value = yield* Timeout.callbackWithin<number, string, "timed out">((done) => {
          done(Exit.succeed(3))
          return () => {}
        }, within("1 hour")).pipe(Effect.ensuring(Effect.sync(() => {
          timers = spy.mock.calls.length
          spy.mockRestore()
        })))
        expect([value, timers]).toEqual([3, 0])
      }))

    it.live("past the duration: the timeout error, and the callback taken back", () =>
      Effect.gen(function*() {
        const waiting = slot()
        const exit = yield* Effect.exit(Timeout.callbackWithin(waiting.register, within("20 millis")))
        expect(exit).toEqual(Exit.fail("timed out"))
        expect(waiting.callbacks.size).toBe(0)
      }))

    it.live("interrupted: the callback taken back and no timer left", () =>
      Effect.gen(function*() {
        const waiting = slot()
        const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length
        const before = timers()
        const fiber = yield* Effect.fork(Timeout.callbackWithin(waiting.register, within("1 hour")))
        yield* Effect.yieldNow()
        expect([waiting.callbacks.size, timers()]).toEqual([1, before + 1])
        yield* Fiber.interrupt(fiber)
        expect([waiting.callbacks.size, timers()]).toEqual([0, before])
      }))

    // Inside an uninterruptible region too: a shutdown's waits are there.
    const regions: ReadonlyArray<readonly [string, (wait: Effect.Effect<number, string>) => Effect.Effect<number, string>]> = [
      ["", identity],
      [" inside an uninterruptible region", Effect.uninterruptible]
    ]
    for (const [where, region] of regions) {
      it.effect(`under the TestClock, its time decides${where}`, () =>
        Effect.gen(function*() {
          const waiting = slot()
          const fiber = yield* Effect.fork(region(Timeout.callbackWithin(waiting.register, within("1 hour"))))
          yield* TestClock.adjust("59 minutes")
          expect(fiber.unsafePoll()).toBeNull()
          yield* TestClock.adjust("1 minute")
          expect(yield* Fiber.await(fiber)).toEqual(Exit.fail("timed out"))
          expect(waiting.callbacks.size).toBe(0)
        }))
    }

    it.live("in the finalizer of an interrupted fiber: waits to the end, then the timeout error", () =>
      Effect.gen(function*() {
        const waiting = slot()
        const seen = yield* Deferred.make<Exit.Exit<number, string>>()
        const started = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(
          Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.ensuring(
              Effect.flatMap(Effect.exit(Timeout.callbackWithin(waiting.register, within("30 millis"))), (exit) =>
                Deferred.succeed(seen, exit))
            )
          )
        )
        yield* Deferred.await(started)
        const t0 = Date.now()
        yield* Fiber.interrupt(fiber)
        // The fiber's interruption does not cut the finalizer's wait short: only its own timer ends it.
        expect(yield* Deferred.await(seen)).toEqual(Exit.fail("timed out"))
        expect(Date.now() - t0).toBeGreaterThanOrEqual(25)
      }))
  })
})
