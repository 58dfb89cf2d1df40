/**
 * A launch's deadline: `launchTimeout` from its start, for the waits that
 * get what is left of it. Wall-clock time (`Date.now()`): it bounds waits
 * on a real process, whose time no test clock moves.
 */
import * as Duration from "effect/Duration"

/** When a launch must be done by, and the timeout that set it (for messages). */
export interface Deadline {
  readonly at: number
  readonly timeout: Duration.Duration
}

/** `timeout` from now. */
export const after = (timeout: Duration.Duration): Deadline => ({ at: Date.now() + Duration.toMillis(timeout), timeout })

/** What is left of it (zero once it has passed). */
export const remaining = (deadline: Deadline): Duration.Duration => Duration.millis(Math.max(0, deadline.at - Date.now()))

/** Has it passed? */
export const passed = (deadline: Deadline): boolean => Date.now() >= deadline.at
