/**
 * Warnings raised in plain callbacks (a socket's reader), logged by one
 * fiber: the first at once, then at most one summary a second, so a flood
 * costs a counter, not a log line per message. The fiber starts with the
 * first warning (most sessions never have one) and lives in the scope
 * `make` ran in; it logs with the annotations that were current there.
 */
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"

/** Where callbacks put their warnings. */
export interface Warnings {
  readonly warn: (text: string) => void
}

const INTERVAL = Duration.seconds(1)
const QUEUED = 256

/** A warning sink whose summaries start with `subject` (e.g. `QMP vm1 QMP`). */
export const make = (subject: string): Effect.Effect<Warnings, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Queue.dropping<string>(QUEUED)
    const scope = yield* Effect.scope
    const runtime = yield* Effect.runtime<never>()
    let dropped = 0
    let started = false
    const log = Effect.gen(function*() {
      yield* Effect.logWarning(yield* Queue.take(queue))
      yield* Effect.sleep(INTERVAL)
      const more = yield* Queue.takeAll(queue)
      const count = more.length + dropped
      dropped = 0
      if (count === 0) return
      yield* Effect.logWarning(
        `${subject}: ${count} more warnings in the last ${Duration.format(INTERVAL)}; the last: ${
          Chunk.last(more).pipe((last) => last._tag === "Some" ? last.value : "(dropped)")
        }`
      )
    }).pipe(Effect.forever)
    return {
      warn: (text) => {
        if (!queue.unsafeOffer(text)) dropped++
        if (started) return
        started = true
        Runtime.runFork(runtime)(log, { scope })
      }
    }
  })
