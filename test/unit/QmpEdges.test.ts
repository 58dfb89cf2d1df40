/**
 * The QMP session at its edges (issue 14): arguments QEMU cannot parse,
 * arguments JavaScript cannot serialise, id-less error replies, garbage
 * floods, a throwing traffic hook, a reply in place of the greeting, and the
 * reason later calls give after a disconnect.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Stream } from "effect"
import type { QMPProtocolError } from "../../src/Errors.js"
import * as QmpClient from "../../src/QmpClient.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"
import { warningsInto } from "../helpers.js"

const services = Effect.all({ qmp: QmpClient.QmpClient, fake: FakeQmp.FakeQmp })

/** Fails the test (rather than hanging it) when a call does not complete promptly. */
const promptly = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(effect, { duration: Duration.seconds(5), onTimeout: () => "no answer within 5 s" as const })

/** QEMU's answer to a request its JSON parser rejects: an error without an id. */
const idLessError = (desc: string) => FakeQmp.raw(`${JSON.stringify({ error: { class: "GenericError", desc } })}\n`)

const nested = (depth: number): unknown => {
  let value: unknown = 0
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

describe("QmpClient: arguments QEMU's parser would reject fail before sending", () => {
  it.scopedLive("a lone UTF-16 surrogate is a QMPEncodeError; nothing is sent; the session goes on", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      // The fake answers as QEMU does: an error without an id (which no command would claim).
      yield* fake.setHandler("qom-list", () => idLessError("JSON parse error, \\ud800 is not a valid Unicode character"))
      for (const text of ["a\ud800b", "\udc00", "x\udfff"]) {
        const error = yield* promptly(Effect.flip(qmp.execute("qom-list", { path: text })))
        expect(error).toMatchObject({ _tag: "QMPEncodeError", command: "qom-list", reason: "LoneSurrogate" })
      }
      // In keys too.
      const key = yield* promptly(Effect.flip(qmp.executeRaw("qom-list", { ["k\ud800"]: 1 })))
      expect(key).toMatchObject({ _tag: "QMPEncodeError", reason: "LoneSurrogate" })
      // A well-formed pair is fine.
      yield* fake.setHandler("echo", (args) => FakeQmp.reply(args))
      expect(yield* qmp.execute("echo", { s: "😀 \\ud800 as text" })).toEqual({ s: "😀 \\ud800 as text" })
      expect((yield* fake.received).map((c) => "execute" in c && c.execute)).toEqual(["qmp_capabilities", "echo"])
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scopedLive("nesting past QEMU's limit of 1024 is a QMPEncodeError; 1024 itself is sent", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler("echo", () => FakeQmp.reply({}))
      // The command object and its arguments are two levels; 1022 arrays more make QEMU's limit of 1024.
      yield* qmp.execute("echo", { x: nested(1022) })
      const error = yield* promptly(Effect.flip(qmp.execute("echo", { x: nested(1023) })))
      expect(error).toMatchObject({ _tag: "QMPEncodeError", reason: "TooDeep" })
      expect(error.message).toContain("1024")
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scopedLive("more than QEMU's 2M tokens in one command is a QMPEncodeError", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      const error = yield* promptly(Effect.flip(qmp.execute("echo", { x: new Array(1_100_000).fill(0) })))
      expect(error).toMatchObject({ _tag: "QMPEncodeError", reason: "TooLarge" })
    }).pipe(Effect.provide(FakeQmp.layer())))
})

describe("QmpClient: arguments that cannot be serialised are typed errors", () => {
  const circular: Record<string, unknown> = { a: 1 }
  circular.self = circular
  const throwingGetter = Object.defineProperty({}, "boom", {
    enumerable: true,
    get: () => {
      throw new Error("getter failed")
    }
  })
  const cases: ReadonlyArray<readonly [string, Record<string, unknown>]> = [
    ["a BigInt", { n: 10n }],
    ["a circular object", circular],
    ["a getter that throws", throwingGetter],
    ["nesting of 5,000 levels", { x: nested(5000) }],
    ["nesting of 100,000 levels", { x: nested(100_000) }]
  ]
  for (const [label, args] of cases) {
    it.scopedLive(`${label}: QMPEncodeError, and the session keeps working`, () =>
      Effect.gen(function*() {
        const { qmp } = yield* services
        const exit = yield* Effect.exit(promptly(qmp.execute("anything", args)))
        expect(exit).toMatchObject({ _tag: "Failure", cause: { _tag: "Fail", error: { _tag: "QMPEncodeError" } } })
        const raw = yield* Effect.exit(promptly(qmp.executeRaw("anything", args)))
        expect(raw).toMatchObject({ _tag: "Failure", cause: { _tag: "Fail", error: { _tag: "QMPEncodeError" } } })
        expect(yield* qmp.execute("query-status")).toMatchObject({ running: true })
      }).pipe(Effect.provide(FakeQmp.layer())))
  }
})

describe("QmpClient: an error reply without an id", () => {
  it.scopedLive("fails the oldest in-band command in flight promptly (QEMU answers in order)", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler("bad", () => idLessError("JSON parse error, expecting value"))
      const error = yield* promptly(Effect.flip(qmp.execute("bad")))
      expect(error).toMatchObject({
        _tag: "QMPCommandError",
        command: "bad",
        class: "GenericError",
        desc: "JSON parse error, expecting value"
      })
      // The commands after it are matched by id as before.
      expect(yield* qmp.execute("query-status")).toMatchObject({ running: true })
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scopedLive("goes to the command it answers even when a later command is in flight", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler("bad", () => idLessError("JSON parse error"))
      yield* fake.setHandler("slow", () => FakeQmp.reply("slow"))
      const [bad, slow] = yield* promptly(
        Effect.all([Effect.flip(qmp.execute("bad")), qmp.execute("slow")], { concurrency: "unbounded" })
      )
      expect(bad).toMatchObject({ _tag: "QMPCommandError", command: "bad" })
      expect(slow).toBe("slow")
    }).pipe(Effect.provide(FakeQmp.layer())))
})

describe("QmpClient: a garbage flood", () => {
  it.scopedLive("is reported in a few coalesced errors and warnings, not one per line", () => {
    const warnings: Array<string> = []
    return Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const errors: Array<QMPProtocolError> = []
      yield* Stream.runForEach(qmp.protocolErrors, (e) => Effect.sync(() => errors.push(e))).pipe(Effect.forkScoped)
      yield* Effect.yieldNow()
      // 100,000 garbage lines (195 KiB), then a reply.
      yield* fake.setHandler("flood", (_args, ctx) => Effect.as(ctx.send("x\n".repeat(100_000)), FakeQmp.reply("ok")))
      expect(yield* promptly(qmp.execute("flood"))).toBe("ok")
      // One error per chunk of input at most (the flood arrives in a few 64 KiB chunks), each with its count.
      expect(errors.length).toBeGreaterThan(0)
      expect(errors.length).toBeLessThanOrEqual(16)
      expect(errors.reduce((sum, e) => sum + (e.count ?? 1), 0)).toBe(100_000)
      // The log has the first error at once, then one summary of the rest a second later.
      yield* Effect.sleep("10 millis").pipe(Effect.repeat({ until: () => warnings.length >= (errors.length > 1 ? 2 : 1) }))
      expect(warnings[0]).toContain("lines of bytes outside a JSON object")
      if (errors.length > 1) expect(warnings[1]).toMatch(new RegExp(`${errors.length - 1} more warnings`))
      expect(warnings.length).toBeLessThanOrEqual(2)
    }).pipe(Effect.provide(FakeQmp.layer()), Effect.provide(warningsInto(warnings)))
  })
})

describe("QmpClient: the traffic hook", () => {
  it.scopedLive("a hook that throws on receive or send cannot break the session; the failure is logged", () => {
    const warnings: Array<string> = []
    return Effect.gen(function*() {
      const { qmp } = yield* services
      expect(yield* qmp.execute("query-status")).toMatchObject({ running: true })
      expect(yield* qmp.execute("query-status")).toMatchObject({ running: true })
      // The session logs from its own fiber: wait for the line.
      yield* Effect.yieldNow().pipe(Effect.repeat({ until: () => warnings.length > 0 }))
      expect(warnings[0]).toMatch(/traffic hook failed on (send|receive): hook failed/)
    }).pipe(
      Effect.provide(FakeQmp.layer({}, {
        onTraffic: () => {
          throw new Error("hook failed")
        }
      })),
      Effect.provide(warningsInto(warnings))
    )
  })

  it.scopedLive("gets the same shape in both directions: the JSON value", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      yield* qmp.execute("query-status")
      expect(seen.find((s) => s.direction === "send" && (s.message as { execute?: string }).execute === "query-status"))
        .toBeDefined()
      expect(seen.find((s) => s.direction === "receive" && typeof s.message === "object")).toBeDefined()
      expect(seen.every((s) => typeof s.message === "object")).toBe(true)
    }).pipe(Effect.provide(FakeQmp.layer({}, { onTraffic: (direction, message) => seen.push({ direction, message }) }))))
  const seen: Array<{ direction: string; message: unknown }> = []
})

describe("QmpClient: handshake and disconnect detail", () => {
  it.scopedLive("a reply in place of the greeting fails the handshake at once as Malformed", () =>
    Effect.gen(function*() {
      const fake = yield* FakeQmp.FakeQmp
      const error = yield* promptly(QmpClient.connect({ path: fake.path }).pipe(Effect.scoped, Effect.flip))
      expect(error).toMatchObject({ _tag: "QMPGreetingError", reason: "Malformed" })
    }).pipe(Effect.provide(FakeQmp.layerServer({ greeting: `${JSON.stringify({ return: {} })}\n` }))))

  it.scopedLive("after the peer closed, later calls fail with the session's real end reason", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.disconnect
      yield* qmp.awaitDisconnect
      const later = yield* Effect.flip(qmp.execute("query-status"))
      expect(later).toMatchObject({ _tag: "QMPDisconnected", reason: "Eof" })
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scopedLive("a call right after quit (reply, then the peer closes) gets the real end reason", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      yield* qmp.execute("quit")
      const later = yield* Effect.flip(qmp.execute("query-status"))
      const end = yield* qmp.awaitDisconnect
      expect(later).toEqual(end)
      expect(later.message).not.toContain("not connected")
      expect(yield* Effect.flip(qmp.execute("query-status"))).toEqual(end)
    }).pipe(Effect.provide(FakeQmp.layer())))
})

