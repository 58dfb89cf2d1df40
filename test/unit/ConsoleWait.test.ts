/**
 * The console's waits on their own, over a stand-in guest (a `PassThrough`
 * the console reads as it would QEMU's socket): waits consume what they
 * match, see output that came before them, find a pattern split across
 * chunks, stop at a `failOn` pattern only when it comes first, end with
 * `ConsoleClosed` when the console does, time out on the fiber's clock, and
 * consume nothing once interrupted.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schedule, Scope, TestClock } from "effect"
import { PassThrough } from "node:stream"
import * as ConsoleSocket from "../../src/ConsoleSocket.js"
import * as Transport from "../../src/internal/transport.js"
import { withNodeDefaults } from "../../src/internal/platform.js"

/** A console over a stand-in guest, in the test's scope; `say` writes as the guest and lets the console read it. */
const standIn = Effect.gen(function*() {
  const guest = new PassThrough()
  const transport = yield* Transport.fromDuplex(guest, "stand-in guest")
  const console = yield* withNodeDefaults(ConsoleSocket.fromTransport(transport, { label: "stand-in" }))
  const say = (text: string) =>
    Effect.flatMap(console.bytesReceived, (before) => {
      guest.write(text)
      // Read as the PassThrough delivers it (at once, or on a later turn): done once the count has moved.
      return Effect.repeat(console.bytesReceived, {
        until: (now) => now >= before + Buffer.byteLength(text),
        schedule: Schedule.spaced("1 millis")
      })
    })
  return { console, guest, say }
})

describe("console waits", () => {
  it.scopedLive("consume what they match, in order, output that came before the wait included", () =>
    Effect.gen(function*() {
      const { console, say } = yield* standIn
      yield* say("boot...\nlogin: first\nlogin: second\n")
      const one = yield* console.waitFor("login:")
      expect(one).toEqual({ match: "login:", before: "boot...\n", groups: [] })
      const two = yield* console.waitFor("login:")
      expect(two.before).toBe(" first\n")
      const none = yield* Effect.flip(console.waitFor("login:", { timeout: "50 millis" }))
      expect(none._tag).toBe("ConsoleTimeout")
      expect(yield* console.unconsumed).toBe(" second\n")
    }))

  it.scopedLive("find a pattern split across chunks, a RegExp's groups too, while waiting", () =>
    Effect.gen(function*() {
      const { console, say } = yield* standIn
      const plain = yield* Effect.fork(console.waitFor("c123d"))
      yield* say("ab")
      yield* say("c12")
      yield* say("3def ")
      expect((yield* Fiber.join(plain)).before).toBe("ab")
      const regexp = yield* Effect.fork(console.waitFor(/IP: (\d+)\.(\d+)/))
      yield* say("IP: 10")
      yield* say(".42\n")
      const found = yield* Fiber.join(regexp)
      expect(found.groups).toEqual(["10", "42"])
      expect(found.before).toBe("ef ")
    }))

  it.scopedLive("failOn ends a wait only when it shows first; the failure's text is consumed", () =>
    Effect.gen(function*() {
      const { console, say } = yield* standIn
      const waiting = yield* Effect.fork(console.waitFor("login:", { failOn: ["Kernel panic"] }))
      yield* say("Kernel panic - not syncing\nlogin:")
      const failure = yield* Effect.flip(Fiber.join(waiting))
      expect(failure).toMatchObject({ _tag: "ConsoleFailure", failedOn: "\"Kernel panic\"", match: "Kernel panic" })
      expect(yield* console.unconsumed).toBe(" - not syncing\nlogin:")
      // After the wanted text, the same pattern does not count.
      yield* say(" ok\nKernel panic")
      const ok = yield* console.waitFor("ok", { failOn: [/Kernel panic/] })
      expect(ok.before).toBe(" - not syncing\nlogin: ")
    }))

  it.scopedLive("after much unconsumed output, patterns split across chunks are found, fail-fast ones too", () =>
    Effect.gen(function*() {
      const { console, say } = yield* standIn
      // Past several of the buffer's pieces: each look searches only the newest text, less a pattern's length.
      yield* say("x".repeat(20_000))
      const failing = yield* Effect.fork(console.waitFor("READY", { failOn: ["PANIC"] }))
      yield* say("...PA")
      yield* say("NIC ...READY")
      expect(yield* Effect.flip(Fiber.join(failing))).toMatchObject({ _tag: "ConsoleFailure", match: "PANIC" })
      // The first "READY!" is the one completed by the "!" that comes next; the second is split after 10,000 more.
      yield* say("!" + "y".repeat(10_000) + "RE")
      expect((yield* console.waitFor("READY!")).before).toBe(" ...")
      const second = yield* Effect.fork(console.waitFor("READY!", { failOn: ["PANIC"] }))
      yield* say("ADY!")
      const found = yield* Fiber.join(second)
      expect(found.before.length).toBe(10_000)
      expect(found.before).toBe("y".repeat(10_000))
    }))

  it.scopedLive("end with ConsoleClosed when the console closes: a pending wait at once, a later one too", () =>
    Effect.gen(function*() {
      const { console, guest, say } = yield* standIn
      yield* say("some output")
      const pending = yield* Effect.fork(console.waitFor("never"))
      guest.end()
      const closed = yield* Effect.flip(Fiber.join(pending))
      expect(closed).toMatchObject({ _tag: "ConsoleClosed" })
      expect((closed as { tail: string }).tail).toContain("some output")
      // What is already there is still found; what is not ends the wait at once.
      expect((yield* console.waitFor("output")).before).toBe("some ")
      expect((yield* Effect.flip(console.waitFor("more")))._tag).toBe("ConsoleClosed")
    }))

  it.scoped("time out on the fiber's clock, saying what was waited for", () =>
    Effect.gen(function*() {
      const { console } = yield* standIn
      const waiting = yield* Effect.fork(console.waitFor("prompt$", { timeout: "30 seconds" }))
      yield* TestClock.adjust("29 seconds")
      expect(waiting.unsafePoll()).toBeNull()
      yield* TestClock.adjust("1 second")
      const timedOut = yield* Effect.flip(Fiber.join(waiting))
      expect(timedOut).toMatchObject({ _tag: "ConsoleTimeout", pattern: "\"prompt$\"", timeoutMillis: 30_000 })
    }))

  it.scopedLive("an interrupted wait consumes nothing of what comes later", () =>
    Effect.gen(function*() {
      const { console, say } = yield* standIn
      const waiting = yield* Effect.fork(console.waitFor("ready"))
      yield* Fiber.interrupt(waiting)
      expect(Exit.isInterrupted(yield* Fiber.await(waiting))).toBe(true)
      yield* say("x ready y")
      expect((yield* console.waitFor("ready")).before).toBe("x ")
    }))

  it.live("a console's scope closing ends its pending waits", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { console } = yield* Scope.extend(standIn, scope)
      const pending = yield* Effect.fork(console.waitFor("never"))
      yield* Scope.close(scope, Exit.void)
      expect((yield* Effect.flip(Fiber.join(pending)))._tag).toBe("ConsoleClosed")
    }))
})
