import { expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Option, Scope } from "effect"
import * as GuestAgent from "../../src/GuestAgent.js"
import * as Machine from "../../src/Machine.js"
import * as FakeGuestAgent from "../../src/testing/FakeGuestAgent.js"
import * as FakeMachine from "../../src/testing/FakeMachine.js"
import { awaitSuspended } from "../helpers.js"

const text = (bytes: Uint8Array) => Buffer.from(bytes).toString("utf8")
const executed = (fake: FakeGuestAgent.FakeGuestAgentService) =>
  Effect.map(fake.received, (received) => received.map((r) => r.execute))

it.scopedLive("exec: the exit code, stdout and stderr as bytes, the input given; a non-zero exit is a result", () =>
  Effect.gen(function*() {
    const fake = yield* FakeGuestAgent.make({
      programs: {
        "/bin/cat": (_args, input) => ({ exitCode: 0, stdout: input }),
        "/bin/sh": (args) => ({ exitCode: 3, stdout: `ran ${args.join(" ")}\n`, stderr: "oops\n" })
      },
      execPolls: 3
    })
    const agent = yield* GuestAgent.connect(fake.path)
    const cat = yield* agent.exec("/bin/cat", [], { input: Buffer.of(0, 1, 2, 0xff) })
    expect(cat.exitCode).toBe(0)
    expect([...cat.stdout]).toEqual([0, 1, 2, 0xff])
    const sh = yield* agent.exec("/bin/sh", ["-c", "exit 3"])
    expect(sh).toMatchObject({ exitCode: 3, signal: null, truncated: false })
    expect(text(sh.stdout)).toBe("ran -c exit 3\n")
    expect(text(sh.stderr)).toBe("oops\n")
    // Polled until it exited: three "still running" answers, then the status.
    expect((yield* executed(fake)).filter((c) => c === "guest-exec-status")).toHaveLength(8)
    const missing = yield* Effect.flip(agent.exec("/no/such"))
    expect(missing).toMatchObject({ _tag: "GuestAgentError", reason: "Command", command: "guest-exec", errorClass: "GenericError" })
    expect(missing.detail).toContain("/no/such")
  }))

it.scopedLive("readFile/writeFile round trip 3 MiB of binary in chunks, and every handle is closed", () =>
  Effect.gen(function*() {
    const fake = yield* FakeGuestAgent.make()
    const agent = yield* GuestAgent.connect(fake.path)
    const data = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 7919) & 0xff)
    yield* agent.writeFile("/tmp/blob", data)
    expect(Buffer.compare((yield* fake.files).get("/tmp/blob")!, data)).toBe(0)
    const back = yield* agent.readFile("/tmp/blob")
    expect(Buffer.compare(back, data)).toBe(0)
    const commands = yield* executed(fake)
    expect(commands.filter((c) => c === "guest-file-write")).toHaveLength(4)
    expect(commands.filter((c) => c === "guest-file-open")).toHaveLength(2)
    expect(commands.filter((c) => c === "guest-file-close")).toHaveLength(2)
    yield* agent.writeFile("/tmp/text", "héllo\n")
    expect(text(yield* agent.readFile("/tmp/text"))).toBe("héllo\n")
    const missing = yield* Effect.flip(agent.readFile("/etc/none"))
    expect(missing).toMatchObject({ reason: "Command", command: "guest-file-open" })
  }))

it.scopedLive("typed execute; an unknown command is a Command error with the agent's class", () =>
  Effect.gen(function*() {
    const fake = yield* FakeGuestAgent.make({
      commands: { "guest-get-osinfo": () => FakeGuestAgent.answer({ id: "debian", "kernel-release": "6.1.0" }) }
    })
    const agent = yield* GuestAgent.connect(fake.path)
    const os = yield* agent.execute("guest-get-osinfo")
    expect(os["kernel-release"]).toBe("6.1.0")
    const info = yield* agent.info
    expect(info.supported_commands.map((c) => c.name)).toContain("guest-exec")
    const unknown = yield* Effect.flip(agent.executeRaw("guest-from-the-future"))
    expect(unknown).toMatchObject({ reason: "Command", errorClass: "CommandNotFound" })
    const encode = yield* Effect.flip(agent.executeRaw("guest-ping", { n: 1n }))
    expect(encode.reason).toBe("Encode")
  }))

it.scopedLive("an agent that starts late: the first request syncs until it answers", () =>
  Effect.gen(function*() {
    const fake = yield* FakeGuestAgent.make({ running: false })
    const agent = yield* GuestAgent.connect(fake.path, { syncInterval: "20 millis" })
    const ping = yield* Effect.fork(agent.execute("guest-ping"))
    // Wait until several syncs went unanswered (dropped, as behind a serial port nobody reads).
    yield* fake.setRunning(true).pipe(Effect.delay("150 millis"))
    yield* Fiber.join(ping)
    const commands = yield* executed(fake)
    expect(commands.at(-1)).toBe("guest-ping")
    expect(commands.slice(0, -1).every((c) => c === "guest-sync-delimited")).toBe(true)
    // Synced: the next request goes straight out.
    yield* agent.execute("guest-ping")
    expect((yield* executed(fake)).slice(-2)).toEqual(["guest-ping", "guest-ping"])
  }), 20_000)

it.scopedLive("no agent at all: a Timeout that says so", () =>
  Effect.gen(function*() {
    const fake = yield* FakeGuestAgent.make({ running: false })
    const agent = yield* GuestAgent.connect(fake.path, { syncInterval: "20 millis" })
    const error = yield* Effect.flip(agent.execute("guest-ping", {}, { timeout: "200 millis" }))
    expect(error).toMatchObject({ reason: "Timeout", command: "guest-sync-delimited" })
    expect(error.message).toContain("qemu-ga running")
  }))

it.scopedLive("a request that times out, a late answer and garbage: the session resyncs and goes on", () =>
  Effect.gen(function*() {
    let silent = true
    const fake = yield* FakeGuestAgent.make({
      commands: {
        "guest-get-time": () => silent ? FakeGuestAgent.silent : FakeGuestAgent.answer(42)
      }
    })
    const agent = yield* GuestAgent.connect(fake.path, { syncInterval: "20 millis" })
    yield* agent.execute("guest-ping")
    const timedOut = yield* Effect.flip(agent.execute("guest-get-time", {}, { timeout: "100 millis" }))
    expect(timedOut).toMatchObject({ reason: "Timeout", command: "guest-get-time" })
    // The late answer to that request: it must not be taken for the next one's.
    yield* fake.sendRaw(`${JSON.stringify({ return: 999, id: 2 })}\n`)
    silent = false
    expect(yield* agent.execute("guest-get-time")).toBe(42)
    const commands = yield* executed(fake)
    expect(commands.filter((c) => c === "guest-sync-delimited")).toHaveLength(2)

    // Garbage while a request waits: a Protocol error, then a resync.
    silent = true
    const waiting = yield* Effect.fork(agent.execute("guest-get-time", {}, { timeout: "10 seconds" }))
    yield* fake.awaitReceived("guest-get-time", 3)
    yield* fake.sendRaw("}}garbage{{\n")
    const garbage = yield* Effect.flip(Fiber.join(waiting))
    expect(garbage).toMatchObject({ reason: "Protocol", command: "guest-get-time" })
    silent = false
    expect(yield* agent.execute("guest-get-time")).toBe(42)
    expect((yield* executed(fake)).filter((c) => c === "guest-sync-delimited")).toHaveLength(3)
  }))

it.scopedLive("the channel closes under a waiting request: Disconnected, and so is every later one", () =>
  Effect.gen(function*() {
    const fakeScope = yield* Scope.make()
    const fake = yield* FakeGuestAgent.make({ commands: { "guest-get-time": () => FakeGuestAgent.silent } }).pipe(
      Scope.extend(fakeScope)
    )
    const agent = yield* GuestAgent.connect(fake.path)
    const waiting = yield* Effect.fork(agent.execute("guest-get-time"))
    yield* fake.awaitReceived("guest-get-time")
    yield* awaitSuspended(waiting)
    yield* Scope.close(fakeScope, Exit.void)
    expect(yield* Effect.flip(Fiber.join(waiting))).toMatchObject({ reason: "Disconnected" })
    expect(yield* Effect.flip(agent.execute("guest-ping"))).toMatchObject({ reason: "Disconnected" })
    expect(yield* agent.isOpen).toBe(false)
  }))

it.scopedLive("a machine with a guest agent channel: vm.guestAgent reaches it; without one, a MachineStateError", () =>
  Effect.gen(function*() {
    const vm = yield* Machine.Machine
    const fake = yield* FakeMachine.FakeMachine
    const agent = yield* vm.guestAgent
    const result = yield* agent.exec("/bin/true")
    expect(result.exitCode).toBe(0)
    expect(Option.isSome(fake.guestAgent)).toBe(true)
    expect(vm.command.join(" ")).toContain("virtserialport,bus=qga-serial.0,chardev=qga0,name=org.qemu.guest_agent.0")
  }).pipe(
    Effect.provide(FakeMachine.layer(
      { guestAgent: {} },
      { guestAgent: { programs: { "/bin/true": () => ({ exitCode: 0 }) } } }
    ))
  ))

it.scopedLive("no guest agent configured: vm.guestAgent fails with MachineStateError", () =>
  Effect.gen(function*() {
    const vm = yield* Machine.Machine
    expect(yield* Effect.flip(vm.guestAgent)).toMatchObject({ _tag: "MachineStateError" })
  }).pipe(Effect.provide(FakeMachine.layer())))
