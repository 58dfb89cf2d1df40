/**
 * Warnings raised in plain callbacks (a socket's reader), logged by one
 * fiber: the first at once, then at most one summary a second, so a flood
 * costs a counter, not a log line per message. The fiber starts with the
 * first warning (most sessions never have one) and lives in the scope
 * given to `make`; it logs with the annotations current where `make` ran.
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

/**
 * A warning sink whose summaries start with `subject` (e.g. `QMP vm1 QMP`);
 * its logger fiber, once started, lives in `scope`. Its queue too is made
 * with the first warning: the sink costs one step to make.
 */
export const make = (subject: string, scope: Scope.Scope): Effect.Effect<Warnings> =>
  Effect.map(Effect.runtime<never>(), (runtime) => {
    let queue: Queue.Queue<string> | undefined
    let dropped = 0
    const log = (queue: Queue.Queue<string>) =>
      Effect.gen(function*() {
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
        if (queue !== undefined) {
          if (!queue.unsafeOffer(text)) dropped++
          return
        }
        queue = Effect.runSync(Queue.dropping<string>(QUEUED))
        queue.unsafeOffer(text)
        Runtime.runFork(runtime)(log(queue), { scope })
      }
    }
  })
