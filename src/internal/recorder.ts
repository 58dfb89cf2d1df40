/**
 * The flight recorder behind `FlightRecord`: a ring of the last QMP messages
 * (kept as the values the session already has; turned into text only when a
 * record is taken), and `attach`, which gives an error a snapshot.
 */
import * as Effect from "effect/Effect"
import { FlightRecord, type FlightRecorderOptions, RecordedMessage } from "../FlightRecord.js"
import { excerpt } from "../QmpProtocol.js"

/** A machine's recorder. */
export interface Recorder {
  /** The traffic hook: every message sent and received. */
  readonly onTraffic: (direction: "send" | "receive", message: unknown) => void
  /** A snapshot now, with the console and log tails supplied by the machine. */
  readonly snapshot: Effect.Effect<FlightRecord>
  /** The error with a snapshot in its `flightRecord` (if it has one already, as it is). */
  readonly attach: <E>(error: E) => Effect.Effect<E>
}

interface Entry {
  readonly at: number
  readonly direction: "send" | "receive"
  readonly message: unknown
}

/** A recorder; `tails` reads the console's and QEMU's output when a record is taken. */
export const make = (
  identity: { readonly machine: string; readonly pid: number | null; readonly command: ReadonlyArray<string> },
  tails: (consoleBytes: number, logBytes: number) => Effect.Effect<{ readonly console: string; readonly log: string }>,
  options: FlightRecorderOptions = {}
): Recorder => {
  const capacity = Math.max(1, options.messages ?? 64)
  const ring: Array<Entry | undefined> = new Array(capacity)
  let total = 0
  const snapshot = Effect.suspend(() => tails(options.consoleBytes ?? 2048, options.logBytes ?? 4096)).pipe(Effect.map(({ console, log }) => {
    const kept: Array<RecordedMessage> = []
    for (let i = Math.max(0, total - capacity); i < total; i++) {
      const entry = ring[i % capacity]!
      kept.push(new RecordedMessage({ at: entry.at, direction: entry.direction, text: excerpt(entry.message) }, true))
    }
    return new FlightRecord({
      machine: identity.machine,
      pid: identity.pid,
      command: identity.command,
      at: Date.now(),
      qmp: kept,
      qmpTotal: total,
      consoleTail: console,
      logTail: log
    }, true)
  }))
  return {
    onTraffic: (direction, message) => {
      ring[total % capacity] = { at: Date.now(), direction, message }
      total++
    },
    snapshot,
    attach: <E>(error: E) =>
      typeof error !== "object" || error === null || "flightRecord" in error && error.flightRecord !== undefined
        ? Effect.succeed(error)
        : Effect.map(snapshot, (record) => withRecord(error, record))
  }
}

/** A copy of `error` (same class, every own property, the exact argv of a launch failure included) with `flightRecord`. */
const withRecord = <E extends object>(error: E, record: FlightRecord): E => {
  const copy = Object.create(Object.getPrototypeOf(error)) as E
  Object.defineProperties(copy, Object.getOwnPropertyDescriptors(error))
  Object.defineProperty(copy, "flightRecord", { value: record, enumerable: true, configurable: true, writable: false })
  return copy
}

/** A traffic hook: the recorder's (which cannot throw) then the user's, either optional. */
export const withHook = (
  recorder: Recorder | undefined,
  user: ((direction: "send" | "receive", message: unknown) => void) | undefined
): ((direction: "send" | "receive", message: unknown) => void) | undefined =>
  recorder === undefined || user === undefined ? recorder?.onTraffic ?? user : (direction, message) => {
    recorder.onTraffic(direction, message)
    user(direction, message)
  }
