/**
 * A result settled once from a plain callback (a socket's reader), and
 * waited for without a fiber: the wait is a callback too, its timer a
 * `setTimeout` under the live clock (`Timeout.callbackWithin`). What a
 * `Deferred` raced with a timeout does, without the two fibers that race
 * forks; used where a launch or a shutdown waits, and for each QMP
 * command's reply (docs/performance.md).
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Timeout from "./timeout.js"

/** A result settled once. */
export interface OneShot<A, E> {
  /** Settles it; later calls do nothing. */
  readonly settle: (exit: Exit.Exit<A, E>) => void
  /** Waits for it, however long. */
  readonly wait: Effect.Effect<A, E>
  /** Waits for it, at most `duration` (`onTimeout()` past it). */
  readonly await: <E2>(
    options: { readonly duration: Duration.DurationInput; readonly onTimeout: () => E2 }
  ) => Effect.Effect<A, E | E2>
}

const noop = () => {}

/** An unsettled one. */
export const make = <A, E>(): OneShot<A, E> => {
  let result: Exit.Exit<A, E> | undefined
  const waiters = new Set<(exit: Exit.Exit<A, E>) => void>()
  const register: Timeout.Register<A, E> = (done) => {
    if (result !== undefined) {
      done(result)
      return noop
    }
    waiters.add(done)
    return () => void waiters.delete(done)
  }
  return {
    settle: (exit) => {
      if (result !== undefined) return
      result = exit
      for (const waiter of waiters) waiter(exit)
      waiters.clear()
    },
    wait: Timeout.callback(register),
    await: (options) => Timeout.callbackWithin(register, options)
  }
}
