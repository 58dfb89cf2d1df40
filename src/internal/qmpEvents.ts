/**
 * A QMP session's events, apart from its commands (as `qemu.qmp` keeps
 * `events.py` apart): the broadcast to streams and subscriptions, the Python original's
 * bounded cache behind `get_qmp_events`/`events_wait`, and waiters that the
 * reader completes synchronously (cheaper than a subscription per wait, and
 * registered the moment they are made, so nothing after that is missed).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type QMPDisconnected, QMPTimeout } from "../Errors.js"
import { type Event, type EventFilter, matchesAny } from "../QmpProtocol.js"
import * as Broadcast from "./broadcast.js"
import * as OneShot from "./oneShot.js"

const DEFAULT_EVENT_TIMEOUT = Duration.seconds(60)

/** A wait registered now for an event that may come later. */
export interface Waiter {
  readonly filters: ReadonlyArray<EventFilter>
  readonly event: OneShot.OneShot<Event, QMPDisconnected>
}

/** The event side of a session. */
export interface EventHub {
  /** From the reader: caches, broadcasts and completes the waits the event matches. */
  readonly publish: (event: Event) => void
  /** From the session's end: waits fail, streams end. */
  readonly end: (error: QMPDisconnected) => void
  readonly stream: Stream.Stream<Event>
  readonly subscribe: Effect.Effect<Broadcast.Subscription<Event>, never, Scope.Scope>
  /** The events with these names, from each run on. */
  readonly named: (names: ReadonlyArray<string>) => Stream.Stream<Event>
  /** A subscription, made now, to the events with these names. */
  readonly subscribeNamed: (names: ReadonlyArray<string>) => Effect.Effect<Broadcast.Subscription<Event>, never, Scope.Scope>
  /** Registers a waiter now (synchronously), so no event after this point is missed. */
  readonly addWaiter: (filters: ReadonlyArray<EventFilter>) => Waiter
  readonly removeWaiter: (waiter: Waiter) => void
  /** Waits for a waiter's event; the timer starts only if it has not come yet. */
  readonly awaitWaiter: (
    waiter: Waiter,
    timeout: Duration.DurationInput | undefined
  ) => Effect.Effect<Event, QMPTimeout | QMPDisconnected>
  /** `events_wait` of QEMU's Python `QEMUMachine`: the oldest cached match, else the first new one; one timeout in all. */
  readonly eventsWait: (
    filters: ReadonlyArray<EventFilter>,
    timeout: Duration.DurationInput | undefined
  ) => Effect.Effect<Event, QMPTimeout | QMPDisconnected>
  readonly getEvent: Effect.Effect<Option.Option<Event>>
  readonly getEvents: Effect.Effect<ReadonlyArray<Event>>
  readonly clearEvents: Effect.Effect<void>
}

/** Makes the event side, and the shutdown of its broadcast for its owner's finalizer. */
export const make = (options: {
  readonly historySize: number
  readonly bufferSize: number
}): { readonly hub: EventHub; readonly shutdown: Effect.Effect<void> } => {
  const { broadcast, shutdown } = Broadcast.unscoped<Event>(options.bufferSize)
  return { hub: hubOver(broadcast, options.historySize), shutdown }
}

/** Waits, cache and subscriptions over a broadcast of the session's events. */
const hubOver = (broadcast: Broadcast.Broadcast<Event>, historySize: number): EventHub => {
  const history: Array<Event> = []
  const waiters = new Set<Waiter>()
  let ended: QMPDisconnected | undefined

  const addWaiter = (filters: ReadonlyArray<EventFilter>): Waiter => {
    const waiter: Waiter = { filters, event: OneShot.make() }
    if (ended !== undefined) waiter.event.settle(Exit.fail(ended))
    else waiters.add(waiter)
    return waiter
  }

  // A callback wait, as a command's reply is: no timer if the event has come already, no fibers for one.
  const awaitWaiter = (waiter: Waiter, timeout: Duration.DurationInput | undefined) => {
    const duration = timeout ?? DEFAULT_EVENT_TIMEOUT
    return waiter.event.await({
      duration,
      onTimeout: () =>
        new QMPTimeout({
          operation: `event wait for ${waiter.filters.map((f) => f.name).join(" | ")}`,
          timeoutMillis: Duration.toMillis(duration)
        })
    }).pipe(Effect.ensuring(Effect.sync(() => waiters.delete(waiter))))
  }

  return {
    publish: (event) => {
      history.push(event)
      if (history.length > historySize) history.shift()
      broadcast.publish(event)
      let consumed = false
      for (const waiter of waiters) {
        if (!matchesAny(event, waiter.filters)) continue
        waiters.delete(waiter)
        consumed = true
        waiter.event.settle(Exit.succeed(event))
      }
      // A wait takes its event out of the cache, as the Python original's does.
      if (consumed) history.splice(history.lastIndexOf(event), 1)
    },
    end: (error) => {
      ended = error
      for (const waiter of waiters) waiter.event.settle(Exit.fail(error))
      waiters.clear()
      broadcast.end()
    },
    stream: broadcast.stream,
    subscribe: broadcast.subscribe,
    named: (names) => Stream.filter(broadcast.stream, (event) => names.includes(event.event)),
    subscribeNamed: (names) =>
      Effect.map(broadcast.subscribe, (subscription) => ({
        // Skips the other events; none at the end.
        take: subscription.take.pipe(
          Effect.repeat({ until: (event) => Option.isNone(event) || names.includes(event.value.event) })
        ),
        stream: Stream.filter(subscription.stream, (event) => names.includes(event.event))
      })),
    addWaiter,
    removeWaiter: (waiter) => void waiters.delete(waiter),
    awaitWaiter,
    eventsWait: (filters, timeout) =>
      Effect.suspend(() => {
        const index = history.findIndex((event) => matchesAny(event, filters))
        return index >= 0 ? Effect.succeed(history.splice(index, 1)[0]!) : awaitWaiter(addWaiter(filters), timeout)
      }),
    getEvent: Effect.sync(() => Option.fromNullable(history.shift())),
    getEvents: Effect.sync(() => history.splice(0)),
    clearEvents: Effect.sync(() => {
      history.length = 0
    })
  }
}
