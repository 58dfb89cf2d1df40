/**
 * A broadcast that ends: values published from a plain callback reach every
 * subscriber, and once it ends every subscriber's stream ends after the
 * values published before the end. Used for QMP events and console output.
 *
 * The end is published as a marker to the subscribers present at the end;
 * one that subscribes later finds its queue empty and the ended flag set.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/** One subscriber's view, from the moment it subscribed. */
export interface Subscription<A> {
  /** The next value, or `Option.none()` once the fan-out has ended and every earlier value was taken. */
  readonly take: Effect.Effect<Option.Option<A>>
  /** The remaining values as a stream that ends with the fan-out. */
  readonly stream: Stream.Stream<A>
}

/** A broadcast to any number of subscribers. */
export interface Fanout<A> {
  /** Publishes a value (from any callback). A subscriber lagging by `capacity` values loses the oldest. */
  readonly publish: (value: A) => void
  /** Ends every subscriber's stream after what was published before. Idempotent. */
  readonly end: () => void
  /** Subscribes now: nothing published after this is missed. */
  readonly subscribe: Effect.Effect<Subscription<A>, never, Scope.Scope>
  /** Values from the moment each run subscribes, ending with the fan-out. */
  readonly stream: Stream.Stream<A>
}

/** Makes a fan-out; the scope shuts it down. */
export const make = <A>(capacity: number): Effect.Effect<Fanout<A>, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(PubSub.sliding<Option.Option<A>>(capacity), PubSub.shutdown),
    (hub) => {
      let ended = false
      const takeFrom = (queue: Queue.Dequeue<Option.Option<A>>): Effect.Effect<Option.Option<A>> =>
        Effect.flatMap(Queue.poll(queue), (polled) =>
          Option.isSome(polled)
            ? Effect.succeed(polled.value)
            : ended
            ? Effect.succeed(Option.none<A>())
            : Queue.take(queue))
      const subscribe = Effect.map(PubSub.subscribe(hub), (queue): Subscription<A> => {
        const take = takeFrom(queue)
        return {
          take,
          stream: Stream.repeatEffectOption(
            Effect.flatMap(take, (item) => Option.isSome(item) ? Effect.succeed(item.value) : Effect.fail(Option.none()))
          )
        }
      })
      return {
        publish: (value) => {
          hub.unsafeOffer(Option.some(value))
        },
        end: () => {
          if (ended) return
          ended = true
          hub.unsafeOffer(Option.none())
        },
        subscribe,
        stream: Stream.unwrapScoped(Effect.map(subscribe, (s) => s.stream))
      }
    }
  )
