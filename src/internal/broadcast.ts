/**
 * A broadcast that ends, over a `PubSub<Take>`: values published from a
 * plain callback reach every subscriber, and `end` ends each subscriber's
 * stream after the values published before it. Used for QMP events and
 * console output.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Take from "effect/Take"

/** One subscriber's view, from the moment it subscribed. */
export interface Subscription<A> {
  /** The next value, or `Option.none()` once the broadcast has ended and every earlier value was taken. */
  readonly take: Effect.Effect<Option.Option<A>>
  /** The remaining values as a stream that ends with the broadcast. */
  readonly stream: Stream.Stream<A>
}

/** A broadcast to any number of subscribers. */
export interface Broadcast<A> {
  /** Publishes a value (from any callback). A subscriber lagging by `capacity` values loses the oldest. */
  readonly publish: (value: A) => void
  /** Ends every subscriber's stream after what was published before. Idempotent. */
  readonly end: () => void
  /** Subscribes now: nothing published after this is missed. */
  readonly subscribe: Effect.Effect<Subscription<A>, never, Scope.Scope>
  /** Values from the moment each run subscribes, ending with the broadcast. */
  readonly stream: Stream.Stream<A>
}

/**
 * Makes a broadcast; the scope shuts it down. The `PubSub` is made on the
 * first subscription: a bounded one allocates its whole capacity, and most
 * sessions have no subscriber for most of their broadcasts (publishing with
 * none drops the value either way).
 */
export const make = <A>(capacity: number): Effect.Effect<Broadcast<A>, never, Scope.Scope> =>
  Effect.flatMap(Effect.scope, (scope) => {
    const { broadcast, shutdown } = unscoped<A>(capacity)
    // Added as it is (no fiber-ref diff and patch around it, which `Effect.addFinalizer` does): it needs none.
    return Effect.as(Scope.addFinalizer(scope, shutdown), broadcast)
  })

/** A broadcast and its shutdown, for an owner that adds the shutdown to a finalizer of its own. */
export const unscoped = <A>(capacity: number): { readonly broadcast: Broadcast<A>; readonly shutdown: Effect.Effect<void> } => {
  let hub: PubSub.PubSub<Take.Take<A>> | undefined
  let ended = false
  // Checked after subscribing: a subscriber that came after the end has no end marker to wait for.
  const subscribe = Effect.suspend(() => PubSub.subscribe(hub ??= Effect.runSync(PubSub.sliding<Take.Take<A>>(capacity)))).pipe(
    Effect.map((queue): Subscription<A> => {
      if (ended) return { take: Effect.succeedNone, stream: Stream.empty }
      let done = false
      return {
        take: Effect.suspend(() =>
          done ? Effect.succeedNone : Effect.map(Queue.take(queue), (take) =>
            Take.match(take, {
              onEnd: () => {
                done = true
                return Option.none<A>()
              },
              // Nothing publishes failures.
              onFailure: () => Option.none<A>(),
              onSuccess: Chunk.head
            }))
        ),
        stream: Stream.flattenTake(Stream.fromQueue(queue))
      }
    })
  )
  return {
    broadcast: {
      publish: (value) => void hub?.unsafeOffer(Take.of(value)),
      end: () => {
        if (ended) return
        ended = true
        hub?.unsafeOffer(Take.end)
      },
      subscribe,
      stream: Stream.unwrapScoped(Effect.map(subscribe, (s) => s.stream))
    },
    shutdown: Effect.suspend(() => hub === undefined ? Effect.void : PubSub.shutdown(hub))
  }
}
