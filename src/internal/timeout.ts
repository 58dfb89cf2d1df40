/**
 * `Effect.timeoutFail` at a lower fixed cost, for the steps that run once per
 * launch and shutdown. Effect's races both sides as forked fibers and joins
 * the winner (0.3–0.4 ms on a small VM whose cores idled while QEMU worked);
 * here `self` runs in one forked fiber that is awaited, and the timer is a
 * second fiber that interrupts it (0.1 ms; `scratchpad/timeout-cost.ts`).
 * Same contract: past `duration` `self` is interrupted, and once it has
 * stopped the effect fails with `onTimeout()`; interrupting the caller
 * interrupts both and waits for them. Fiber refs set inside `self` (log
 * annotations, ...) stay inside it.
 *
 * Under the default (live) clock the timer is a plain `setTimeout` rather
 * than a second fiber: a fork and an interruption fewer per launch and per
 * shutdown. Under any other clock (`TestClock`) it is a fiber sleeping on
 * that clock, so tests can move time.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"

/** The clock a fiber has when none was provided. */
const liveClock: Clock.Clock = Effect.runSync(Effect.clock)
/** `setTimeout` takes at most this (about 24.8 days); a longer timer is a fiber. */
const MAX_TIMER_MILLIS = 2 ** 31 - 1

/** Whether `clock` can be served by a `setTimeout` of `millis`: the live one, within its range. */
const plainTimer = (clock: Clock.Clock, millis: number) => clock === liveClock && millis <= MAX_TIMER_MILLIS

const timerStop = (handle: ReturnType<typeof setTimeout>) => () => clearTimeout(handle)
const fiberStop = (timer: Fiber.RuntimeFiber<void>) => () => timer.unsafeInterruptAsFork(FiberId.none)

/** Runs `self`; past `duration`, interrupts it and fails with `onTimeout()`. */
export const timeoutFail = <A, E, R, E2>(
  self: Effect.Effect<A, E, R>,
  options: { readonly duration: Duration.DurationInput; readonly onTimeout: () => E2 }
): Effect.Effect<A, E | E2, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      let timedOut = false
      const fiber = yield* Effect.fork(restore(self))
      const expire = () => {
        timedOut = true
        fiber.unsafeInterruptAsFork(FiberId.none)
      }
      const millis = Duration.toMillis(options.duration)
      const clock = yield* Effect.clock
      const stop = plainTimer(clock, millis)
        ? timerStop(setTimeout(expire, millis))
        : fiberStop(
          yield* Effect.fork(
            // Interruptible, unlike the region it is forked from: its sleep must end when `self` does.
            Effect.interruptible(Effect.sleep(options.duration)).pipe(Effect.zipRight(Effect.sync(expire)))
          )
        )
      const exit = yield* restore(Fiber.await(fiber)).pipe(
        Effect.onInterrupt(() => Effect.zipRight(Effect.sync(stop), Fiber.interrupt(fiber)))
      )
      stop()
      return yield* timedOut && Exit.isInterrupted(exit) ? Effect.fail(options.onTimeout()) : exit
    })
  )

/** How a callback wait hands its callback over: it may call it at once, and returns how to take it back. */
export type Register<A, E> = (done: (exit: Exit.Exit<A, E>) => void) => () => void

/** Waits for a callback, however long; interrupting the wait takes the callback back. No fiber, no timer. */
export const callback = <A, E>(register: Register<A, E>): Effect.Effect<A, E> =>
  Effect.async<A, E>((resume) => Effect.sync(register(resume)))

/**
 * Waits for a callback, at most `duration`; past it, fails with
 * `onTimeout()`. `register` hands the callback to whatever completes the
 * wait (a socket's reader) and returns how to take it back; it may call it
 * at once, and then no timer is set. No fiber is forked: under the live
 * clock the timer is a `setTimeout` in the same wait (under another clock,
 * `Effect.timeoutFail`). An infinite duration has no timer. Interrupting
 * the wait takes the callback back.
 */
export const callbackWithin = <A, E, E2>(
  register: Register<A, E>,
  options: { readonly duration: Duration.DurationInput; readonly onTimeout: () => E2 }
): Effect.Effect<A, E | E2> =>
  Effect.clockWith((clock) => {
    const millis = Duration.toMillis(options.duration)
    if (plainTimer(clock, millis)) {
      return Effect.async<A, E | E2>((resume) => {
        let settled = false
        let timer: ReturnType<typeof setTimeout> | undefined
        const takeBack = register((exit) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          resume(exit)
        })
        if (settled) return
        timer = setTimeout(() => {
          if (settled) return
          settled = true
          takeBack()
          resume(Effect.fail(options.onTimeout()))
        }, millis)
        return Effect.sync(() => {
          settled = true
          clearTimeout(timer)
          takeBack()
        })
      })
    }
    const wait = callback(register)
    // Interruptible, so that the timer fiber can end it inside uninterruptible regions (finalizers) too.
    return millis === Infinity ? wait : Effect.timeoutFail(Effect.interruptible(wait), options)
  })
