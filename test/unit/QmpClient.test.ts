import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Exit, Fiber, Option, Stream, TestClock, TestServices } from "effect"
import * as QmpClient from "../../src/QmpClient.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"
import { awaitSuspended } from "../helpers.js"

const services = Effect.all({ qmp: QmpClient.QmpClient, fake: FakeQmp.FakeQmp })

/** Sleeps on the real clock, also inside `it.effect` where the TestClock stands still. */
const realSleep = (millis: number) => TestServices.provideLive(Effect.sleep(Duration.millis(millis)))

/** Waits until the fake has received a command of this name (so its caller's timer is running). */
const waitUntilReceived = (name: string) =>
  Effect.flatMap(FakeQmp.FakeQmp, (fake) =>
    Effect.gen(function*() {
      for (;;) {
        const commands = yield* fake.received
        if (commands.some((c) => "execute" in c && c.execute === name)) return
        yield* realSleep(1)
      }
    }))

describe("QmpClient handshake", () => {
  it.scoped("negotiates capabilities and runs a command", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      expect(qmp.greeting.QMP.version.qemu.major).toBe(7)
      expect(qmp.capabilities).toEqual([])
      expect(yield* qmp.execute("query-status")).toEqual({ status: "running", singlestep: false, running: true })
      const commands = yield* fake.received
      expect(commands[0]).toMatchObject({ execute: "qmp_capabilities" })
      expect(commands[0]).not.toHaveProperty("arguments")
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("asks for oob only when asked and offered", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      expect(qmp.capabilities).toEqual(["oob"])
      expect((yield* fake.received)[0]).toMatchObject({ execute: "qmp_capabilities", arguments: { enable: ["oob"] } })
    }).pipe(Effect.provide(FakeQmp.layer({}, { oob: true }))))

  it.scoped("does not ask for oob when the server does not offer it", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      expect(qmp.capabilities).toEqual([])
    }).pipe(
      Effect.provide(
        FakeQmp.layer({ greeting: { QMP: { ...FakeQmp.defaultGreeting.QMP, capabilities: [] } } }, { oob: true })
      )
    ))

  it.effect("fails with QMPGreetingError when no greeting comes in time", () =>
    Effect.gen(function*() {
      const fake = yield* FakeQmp.FakeQmp
      const fiber = yield* QmpClient.connect({ path: fake.path }, { greetingTimeout: "5 seconds" }).pipe(
        Effect.scoped,
        Effect.fork
      )
      while ((yield* fake.connections) === 0) yield* realSleep(1)
      yield* Effect.yieldNow()
      yield* TestClock.adjust(Duration.seconds(5))
      const exit = yield* Fiber.await(fiber)
      expect(exit).toMatchObject({ _tag: "Failure", cause: { error: { _tag: "QMPGreetingError", reason: "Timeout" } } })
    }).pipe(Effect.provide(FakeQmp.layerServer({ greeting: "none" }))))

  it.scoped("fails with QMPGreetingError on a malformed greeting", () =>
    Effect.gen(function*() {
      const fake = yield* FakeQmp.FakeQmp
      const error = yield* QmpClient.connect({ path: fake.path }).pipe(Effect.scoped, Effect.flip)
      expect(error._tag).toBe("QMPGreetingError")
      expect(error._tag === "QMPGreetingError" && error.reason).toBe("Malformed")
    }).pipe(Effect.provide(FakeQmp.layerServer({ greeting: "{\"QMP\": {\"version\": 7}}\n" }))))

  it.scoped("fails with QMPGreetingError when the server refuses negotiation", () =>
    Effect.gen(function*() {
      const fake = yield* FakeQmp.FakeQmp
      const error = yield* QmpClient.connect({ path: fake.path }).pipe(Effect.scoped, Effect.flip)
      expect(error).toMatchObject({ _tag: "QMPGreetingError", reason: "Negotiation" })
    }).pipe(
      Effect.provide(FakeQmp.layerServer({ commands: { qmp_capabilities: () => FakeQmp.error("GenericError", "no") } }))
    ))

  it.scoped("fails with QMPConnectError when nothing listens", () =>
    Effect.gen(function*() {
      const error = yield* QmpClient.connect({ path: "/nonexistent/qmp.sock" }).pipe(Effect.scoped, Effect.flip)
      expect(error._tag).toBe("QMPConnectError")
      expect(error.message).toContain("/nonexistent/qmp.sock")
    }))

  it.scoped("keeps events that arrive before and during the handshake", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      const events = yield* qmp.getEvents
      expect(events.map((e) => e.event)).toEqual(["EARLY", "DURING"])
    }).pipe(
      Effect.provide(FakeQmp.layer({
        greeting: `${JSON.stringify(FakeQmp.defaultGreeting)}\n${
          JSON.stringify({ event: "EARLY", timestamp: { seconds: 1, microseconds: 0 } })
        }\n`,
        commands: {
          qmp_capabilities: (_args, ctx) => Effect.as(ctx.emit("DURING"), FakeQmp.reply({}))
        }
      }))
    ))
})

describe("QmpClient commands", () => {
  it.scoped("fails with QMPCommandError carrying class, desc and command", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      const error = yield* Effect.flip(qmp.execute("no-such-command"))
      expect(error).toMatchObject({
        _tag: "QMPCommandError",
        command: "no-such-command",
        class: "CommandNotFound",
        desc: "The command no-such-command has not been found"
      })
      const raw = yield* qmp.executeRaw("no-such-command")
      expect(raw).toMatchObject({ error: { class: "CommandNotFound" } })
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("sends arguments as given and answers many commands in flight from many fibers", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler("echo", (args) => FakeQmp.reply(args))
      const results = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => qmp.execute("echo", { n: i, "node-name": `n${i}` }),
        { concurrency: "unbounded" }
      )
      expect(results).toEqual(Array.from({ length: 200 }, (_, i) => ({ n: i, "node-name": `n${i}` })))
      const ids = (yield* fake.received).map((c) => c.id)
      expect(new Set(ids).size).toBe(ids.length)
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("matches replies by id even when they come back out of order", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const gate = yield* Deferred.make<void>()
      yield* fake.setHandler("slow", () => Effect.as(Deferred.await(gate), FakeQmp.reply("slow")))
      yield* fake.setHandler("fast", () => FakeQmp.reply("fast"))
      // The fake answers in order; emulate out-of-order replies with raw bytes.
      yield* fake.setHandler("pair", (_args, ctx) =>
        Effect.as(
          ctx.send(`${JSON.stringify({ return: "second", id: (ctx.command.id as number) + 1 })}\n`),
          FakeQmp.noReply
        ))
      yield* fake.setHandler("pair2", (_args, ctx) =>
        Effect.as(ctx.send(`${JSON.stringify({ return: "first", id: (ctx.command.id as number) - 1 })}\n`), FakeQmp.noReply))
      const both = yield* Effect.all([qmp.execute("pair"), qmp.execute("pair2")], { concurrency: "unbounded" })
      expect(both).toEqual(["first", "second"])
      yield* Deferred.succeed(gate, undefined)
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.effect("times out with QMPTimeout, stays usable, and drops the late reply", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const release = yield* Deferred.make<void>()
      yield* fake.setHandler("hang", (_args, ctx) =>
        Effect.gen(function*() {
          yield* Deferred.await(release)
          yield* ctx.send(`${JSON.stringify({ return: "late", id: ctx.command.id })}\n`)
          return FakeQmp.noReply
        }))
      const fiber = yield* Effect.fork(qmp.execute("hang", undefined, { timeout: "2 seconds" }))
      yield* waitUntilReceived("hang")
      yield* TestClock.adjust(Duration.seconds(2))
      const exit = yield* Fiber.await(fiber)
      expect(exit).toMatchObject({
        _tag: "Failure",
        cause: { error: { _tag: "QMPTimeout", operation: "command hang", timeoutMillis: 2000 } }
      })
      const errors = yield* Effect.fork(Stream.runCollect(Stream.take(qmp.protocolErrors, 1)))
      yield* Deferred.succeed(release, undefined)
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
      expect(yield* qmp.isConnected).toBe(true)
      yield* Fiber.interrupt(errors)
      const collected = yield* Fiber.join(errors).pipe(Effect.exit)
      expect(Exit.isInterrupted(collected)).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(FakeQmp.layer())))

  it.effect("uses the client's default command timeout", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler("hang", () => FakeQmp.noReply)
      const fiber = yield* Effect.fork(qmp.execute("hang"))
      yield* waitUntilReceived("hang")
      yield* TestClock.adjust(Duration.seconds(3))
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "QMPTimeout", timeoutMillis: 3000 })
    }).pipe(Effect.scoped, Effect.provide(FakeQmp.layer({}, { commandTimeout: "3 seconds" }))))

  it.scoped("interruption of a waiting caller removes its waiter; the later reply is dropped quietly", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const release = yield* Deferred.make<void>()
      yield* fake.setHandler("hang", (_args, ctx) =>
        Effect.gen(function*() {
          yield* Deferred.await(release)
          yield* ctx.send(`${JSON.stringify({ return: "late", id: ctx.command.id })}\n`)
          return FakeQmp.noReply
        }))
      const errors: Array<unknown> = []
      yield* Stream.runForEach(qmp.protocolErrors, (e) => Effect.sync(() => errors.push(e))).pipe(Effect.forkScoped)
      const fiber = yield* Effect.fork(qmp.execute("hang"))
      yield* waitUntilReceived("hang")
      yield* Fiber.interrupt(fiber)
      yield* Deferred.succeed(release, undefined)
      yield* fake.setHandler("unknown-id", () => FakeQmp.replyWithId(999_999, 1))
      yield* Effect.fork(qmp.execute("unknown-id"))
      // The unknown id is reported; the late reply before it was not.
      while (errors.length === 0) yield* realSleep(1)
      expect(errors).toHaveLength(1)
      expect(errors[0]).toMatchObject({ _tag: "QMPProtocolError", reason: "UnknownId" })
      expect(yield* qmp.execute("query-status")).toMatchObject({ running: true })
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("reports a reply without id as a protocol error and survives", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler("noid", () => FakeQmp.replyWithId(undefined, 1))
      const errorFiber = yield* Stream.runHead(qmp.protocolErrors).pipe(Effect.fork)
      yield* Effect.yieldNow()
      yield* Effect.fork(qmp.execute("noid"))
      const error = yield* Fiber.join(errorFiber)
      expect(Option.getOrThrow(error)).toMatchObject({ reason: "MissingId", fatal: false })
      expect(yield* qmp.execute("query-status")).toMatchObject({ running: true })
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("survives garbage from the server", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const errorFiber = yield* Stream.runHead(qmp.protocolErrors).pipe(Effect.fork)
      yield* Effect.yieldNow()
      yield* fake.sendRaw("%%% not json %%%\n")
      const error = yield* Fiber.join(errorFiber)
      expect(Option.getOrThrow(error)).toMatchObject({ reason: "Garbage" })
      expect(yield* qmp.execute("query-status")).toMatchObject({ running: true })
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("converts hmp output to a string", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler(
        "human-monitor-command",
        (args) => FakeQmp.reply(`ran: ${String(args?.["command-line"])}\r\n`)
      )
      expect(yield* qmp.hmp("info status")).toBe("ran: info status\r\n")
    }).pipe(Effect.provide(FakeQmp.layer())))
})

describe("QmpClient disconnects", () => {
  it.scoped("fails pending commands with QMPDisconnected when the peer closes mid-command, and later ones fast", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler("die", () => FakeQmp.disconnect)
      const error = yield* Effect.flip(qmp.execute("die"))
      expect(error).toMatchObject({ _tag: "QMPDisconnected", reason: "Eof" })
      const later = yield* Effect.flip(qmp.execute("query-status"))
      expect(later._tag).toBe("QMPDisconnected")
      expect(yield* qmp.isConnected).toBe(false)
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("fails the session on an oversize message", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler("huge", () => FakeQmp.raw(`{"return": "${"x".repeat(64 * 1024)}"}\n`))
      const error = yield* Effect.flip(qmp.execute("huge"))
      expect(error).toMatchObject({ _tag: "QMPDisconnected", reason: "Protocol" })
      expect(error.message).toContain("exceeds the cap of 16384 bytes")
      expect(yield* qmp.isConnected).toBe(false)
    }).pipe(Effect.provide(FakeQmp.layer({}, { maxMessageBytes: 16 * 1024 }))))

  it.scoped("ends event streams when the session ends", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const subscription = yield* qmp.subscribe
      yield* fake.emit("ONE")
      yield* fake.emit("TWO")
      yield* fake.disconnect
      const events = yield* Stream.runCollect(subscription.stream)
      expect(Chunk.toArray(events).map((e) => e.event)).toEqual(["ONE", "TWO"])
      // A stream started after the end ends at once.
      expect(Chunk.size(yield* Stream.runCollect(qmp.events))).toBe(0)
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("fails an event wait with QMPDisconnected when the session ends", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const waiting = yield* Effect.fork(qmp.eventWait("NEVER"))
      yield* awaitSuspended(waiting)
      yield* fake.disconnect
      const error = yield* Fiber.join(waiting).pipe(Effect.flip)
      expect(error._tag).toBe("QMPDisconnected")
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("close fails pending commands and is idempotent", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* fake.setHandler("hang", () => FakeQmp.noReply)
      const fiber = yield* Effect.fork(qmp.execute("hang"))
      yield* waitUntilReceived("hang")
      yield* qmp.close
      yield* qmp.close
      const error = yield* Fiber.join(fiber).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "QMPDisconnected", reason: "Closed" })
      expect((yield* qmp.awaitDisconnect).reason).toBe("Closed")
    }).pipe(Effect.provide(FakeQmp.layer())))
})

describe("QmpClient events", () => {
  it.scoped("executeAndWait catches the event QEMU sends before the reply", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      const { event, result } = yield* qmp.executeAndWait("stop", undefined, "STOP")
      expect(result).toEqual({})
      expect(event.event).toBe("STOP")
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("eventWait finds a cached event first, and a new one after", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* qmp.execute("stop")
      const cached = yield* qmp.eventWait("STOP")
      expect(cached.event).toBe("STOP")
      const waiting = yield* Effect.fork(qmp.eventWait("BLOCK_JOB_COMPLETED", { match: { data: { device: "d1" } } }))
      yield* awaitSuspended(waiting)
      yield* fake.emit("BLOCK_JOB_COMPLETED", { device: "d0" })
      yield* fake.emit("BLOCK_JOB_COMPLETED", { device: "d1" })
      const event = yield* Fiber.join(waiting)
      expect(event.data).toEqual({ device: "d1" })
      // The consumed events left the cache; the unmatched one stayed.
      const rest = yield* qmp.getEvents
      expect(rest.map((e) => e.data)).toEqual([{ device: "d0" }])
      expect(yield* qmp.getEvents).toEqual([])
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.effect("eventsWait has one timeout for the whole wait", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const subscription = yield* qmp.subscribe
      const waiting = yield* Effect.fork(qmp.eventsWait([{ name: "A" }, { name: "B" }], { timeout: "10 seconds" }))
      yield* awaitSuspended(waiting)
      yield* TestClock.adjust(Duration.seconds(6))
      yield* fake.emit("OTHER")
      // The client has it: another event does not restart the wait's one timeout.
      expect(Option.map(yield* subscription.take, (e) => e.event)).toEqual(Option.some("OTHER"))
      yield* TestClock.adjust(Duration.seconds(4))
      const error = yield* Fiber.join(waiting).pipe(Effect.flip)
      expect(error).toMatchObject({ _tag: "QMPTimeout", operation: "event wait for A | B", timeoutMillis: 10_000 })
    }).pipe(Effect.scoped, Effect.provide(FakeQmp.layer())))

  it.scoped("getEvent pops the oldest cached event", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      yield* qmp.execute("stop")
      yield* qmp.execute("cont")
      expect(Option.map(yield* qmp.getEvent, (e) => e.event)).toEqual(Option.some("STOP"))
      expect(Option.map(yield* qmp.getEvent, (e) => e.event)).toEqual(Option.some("RESUME"))
      expect(yield* qmp.getEvent).toEqual(Option.none())
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("fans events out to every subscriber", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const a = yield* qmp.subscribe
      const b = yield* qmp.subscribe
      yield* fake.emit("X", { n: 1 })
      expect(Option.map(yield* a.take, (e) => e.data)).toEqual(Option.some({ n: 1 }))
      expect(Option.map(yield* b.take, (e) => e.data)).toEqual(Option.some({ n: 1 }))
    }).pipe(Effect.provide(FakeQmp.layer())))

  it.scoped("bounds the event cache", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      const sub = yield* qmp.subscribe
      for (let i = 0; i < 10; i++) yield* fake.emit("E", { i })
      for (let i = 0; i < 10; i++) yield* sub.take
      const cached = yield* qmp.getEvents
      expect(cached.map((e) => e.data?.i)).toEqual([7, 8, 9])
    }).pipe(Effect.provide(FakeQmp.layer({}, { eventHistorySize: 3 }))))
})

describe("QmpClient descriptor passing (fake server: the bytes arrive, the descriptor is dropped by Node's reader)", () => {
  it.scoped("getfd and addFd send their command with the descriptor, framed like any other", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      yield* qmp.getfd("disk0", { path: "/etc/hostname" })
      const info = yield* qmp.addFd({ path: "/etc/hostname" }, { fdsetId: 3, opaque: "note" })
      expect(info).toEqual({ "fdset-id": 3, fd: 42 })
      yield* qmp.sendFdScm({ path: "/etc/hostname" })
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running" })
      const commands = (yield* fake.received).slice(1)
      expect(commands).toMatchObject([
        { execute: "getfd", arguments: { fdname: "disk0" } },
        { execute: "add-fd", arguments: { "fdset-id": 3, opaque: "note" } },
        { execute: "query-status" }
      ])
    }).pipe(Effect.provide(FakeQmp.layer({
      commands: { "add-fd": (args) => FakeQmp.reply({ "fdset-id": args?.["fdset-id"] ?? 0, fd: 42 }) }
    }))))

  it.scoped("a command error after the descriptor went is the command's error", () =>
    Effect.gen(function*() {
      const { qmp } = yield* services
      expect(yield* Effect.flip(qmp.getfd("x", { path: "/etc/hostname" }))).toMatchObject({
        _tag: "QMPCommandError",
        command: "getfd",
        class: "GenericError"
      })
    }).pipe(Effect.provide(FakeQmp.layer({
      commands: { getfd: () => FakeQmp.error("GenericError", "No file descriptor supplied via SCM_RIGHTS") }
    }))))

  it.scoped("a bad descriptor fails before anything is sent", () =>
    Effect.gen(function*() {
      const { fake, qmp } = yield* services
      expect(yield* Effect.flip(qmp.getfd("x", 9999))).toMatchObject({ _tag: "FdPassingError", reason: "BadDescriptor" })
      expect(yield* Effect.flip(qmp.sendFdScm({ path: "/nonexistent" }))).toMatchObject({
        _tag: "FdPassingError",
        reason: "Open"
      })
      expect((yield* fake.received).map((c) => "execute" in c && c.execute)).toEqual(["qmp_capabilities"])
    }).pipe(Effect.provide(FakeQmp.layer())))
})
