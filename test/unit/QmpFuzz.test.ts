import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Logger, LogLevel, Option, TestClock } from "effect"
import * as QmpClient from "../../src/QmpClient.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"

/** A small seeded PRNG (mulberry32), so every run fuzzes the same cases. */
const prng = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

type Case = { readonly kind: string; readonly bytes: (id: number) => string | Uint8Array }

const makeCases = (count: number, seed: number): Array<Case> => {
  const random = prng(seed)
  const int = (n: number) => Math.floor(random() * n)
  const kinds: Array<() => Case> = [
    () => {
      const bytes = Uint8Array.from({ length: 1 + int(200) }, () => int(256))
      return { kind: "random bytes", bytes: () => bytes }
    },
    () => {
      const cut = 1 + int(30)
      return { kind: "truncated JSON", bytes: (id) => `${JSON.stringify({ return: { a: [1, 2, 3] }, id }).slice(0, cut)}\n` }
    },
    () => {
      const depth = 1 + int(5000)
      return { kind: "deep nesting", bytes: (id) => `{"return": ${"[".repeat(depth)}${"]".repeat(depth)}, "id": ${id}}\n` }
    },
    () => {
      const shapes = [
        (id: number) => ({ return: 1, id: String(id) }),
        () => ({ event: 5, timestamp: { seconds: 1, microseconds: 1 } }),
        (id: number) => ({ error: "a string", id }),
        (id: number) => ({ error: { class: 1, desc: null }, id }),
        () => ({ id: { nested: true } }),
        () => ({ event: "X", data: [1, 2], timestamp: "now" }),
        () => ({ QMP: { version: 7 } })
      ]
      const shape = shapes[int(shapes.length)]!
      return { kind: "wrong types", bytes: (id) => `${JSON.stringify(shape(id))}\n` }
    },
    () => {
      const other = 100_000 + int(1000)
      return { kind: "unknown id", bytes: () => `${JSON.stringify({ return: {}, id: other })}\n` }
    },
    () => {
      const n = 100 + int(2000)
      const line = `${JSON.stringify({ event: "FLOOD", timestamp: { seconds: 1, microseconds: 2 } })}\n`
      return { kind: "event flood", bytes: () => line.repeat(n) }
    },
    () => ({ kind: "oversize", bytes: (id) => `{"return": "${"x".repeat(70_000)}", "id": ${id}}\n` })
  ]
  return Array.from({ length: count }, () => kinds[int(kinds.length)]!())
}

const allowed = new Set(["QMPTimeout", "QMPDisconnected", "QMPCommandError"])

/** An event on a line of its own: the decoder reads it whatever came before, unless the session ended. */
const sentinel = `\n${JSON.stringify({ event: "SENTINEL", timestamp: { seconds: 1, microseconds: 0 } })}\n`

describe("QmpClient under malformed input (seeded fuzz)", () => {
  for (const [index, fuzz] of makeCases(120, 20261125).entries()) {
    // The test clock: a case whose reply the fuzz swallowed times out at once, not after 2 real seconds.
    it.effect(`case ${index}: ${fuzz.kind} is survived or ends in a typed error`, () =>
      Effect.gen(function*() {
        const fake = yield* FakeQmp.FakeQmp
        const qmp = yield* QmpClient.QmpClient
        const events = yield* qmp.subscribe
        // Send the fuzz, then a well-formed reply for the command "fuzz", then the sentinel.
        yield* fake.setHandler("fuzz", (_args, ctx) =>
          Effect.zipRight(
            ctx.send(fuzz.bytes(ctx.command.id as number)),
            Effect.as(ctx.send(`${JSON.stringify({ return: "ok", id: ctx.command.id })}${sentinel}`), FakeQmp.noReply)
          ))
        const fuzzed = yield* Effect.fork(Effect.exit(qmp.execute("fuzz", undefined, { timeout: "2 seconds" })))
        // Everything the fake sent has been read once the sentinel (or the end of the session) is.
        yield* events.take.pipe(Effect.repeat({ until: (event) => Option.isNone(event) || event.value.event === "SENTINEL" }))
        yield* TestClock.adjust("2 seconds")
        const exit = yield* Fiber.join(fuzzed)
        if (Exit.isFailure(exit)) {
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          expect(allowed.has(error?._tag ?? "defect")).toBe(true)
        }
        if (yield* qmp.isConnected) {
          expect(yield* qmp.execute("query-status")).toMatchObject({ running: true })
        } else {
          expect((yield* Effect.flip(qmp.execute("query-status")))._tag).toBe("QMPDisconnected")
        }
      }).pipe(
        Effect.scoped,
        Effect.provide(FakeQmp.layer({}, { maxMessageBytes: 64 * 1024 })),
        // Each case makes the client warn about the protocol error, by design; keep the test output readable.
        Logger.withMinimumLogLevel(LogLevel.Error)
      ))
  }
})
