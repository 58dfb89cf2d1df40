/**
 * A deadline: a timeout from a start, for the waits that get what is left
 * of it. A launch's is on the wall clock (`Date.now()`): it bounds waits on a
 * real process, whose time no test clock moves. A shutdown's is on the
 * fiber's clock, as the timer it replaced was.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"

/** When something must be done by, the timeout that set it (for messages), and the clock it is read on. */
export interface Deadline {
  readonly at: number
  readonly timeout: Duration.Duration
  readonly now: () => number
}

/** `timeout` from now, on `now` (milliseconds; default the wall clock). */
export const after = (timeout: Duration.Duration, now: () => number = Date.now): Deadline => ({
  at: now() + Duration.toMillis(timeout),
  timeout,
  now
})

/** `timeout` from now on `clock` (a fiber's, so that `TestClock` moves it). */
export const onClock = (timeout: Duration.Duration, clock: Clock.Clock): Deadline =>
  after(timeout, () => clock.unsafeCurrentTimeMillis())

/** What is left of it (zero once it has passed). */
export const remaining = (deadline: Deadline): Duration.Duration =>
  Duration.millis(Math.max(0, deadline.at - deadline.now()))

/** Has it passed? */
export const passed = (deadline: Deadline): boolean => deadline.now() >= deadline.at
