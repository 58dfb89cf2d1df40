/**
 * The Machine service's lifecycle against a fake QEMU (testing/FakeMachine):
 * every shutdown path, with no QEMU.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Option, Stream, TestClock, TestServices } from "effect"
import * as Machine from "../../src/Machine.js"
import * as FakeMachine from "../../src/testing/FakeMachine.js"
import { type AnnotatedWarning, annotatedWarningsInto, makeBaseDir, warningsInto } from "../helpers.js"

/** Sleeps on the real clock, also where the TestClock stands still. */
const realSleep = (millis: number) => TestServices.provideLive(Effect.sleep(Duration.millis(millis)))

const services = Effect.all({ vm: Machine.Machine, fake: FakeMachine.FakeMachine })
const sent = (fake: FakeMachine.FakeMachineService) =>
  Effect.map(fake.qmp.received, (commands) => commands.map((c) => "execute" in c ? c.execute : c["exec-oob"]))

/** The fake machine's layer, with what the machine logs at warning level collected in `warnings`. */
const fakeWithWarnings = (label: string, warnings: Array<string>, config: Machine.MachineConfig = {}) =>
  Layer.merge(FakeMachine.layer({ baseTempDir: makeBaseDir(label), ...config }), warningsInto(warnings))

describe("Machine against a fake QEMU", () => {
  it.live("a launch with a spawner of the user's runs under one launch-wide timer: a greeting that never comes is a Timeout", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const error = yield* Layer.build(
        FakeMachine.layer({ baseTempDir: makeBaseDir("fake-timeout"), launchTimeout: "200 millis" }, { greeting: "none" })
      ).pipe(Effect.scoped, Effect.flip)
      expect(error).toMatchObject({ _tag: "VMLaunchFailure", reason: "Timeout", exitCode: null })
      expect(error.message).toContain("did not complete within 200ms")
      expect(Date.now() - started).toBeLessThan(5000)
    }))

  it.scoped("commands, events and a clean shutdown: quit once, exit code 0, nothing logged", () => {
    const warnings: Array<string> = []
    return Effect.gen(function*() {
      const { fake, vm } = yield* services
      expect(yield* vm.execute("query-status")).toMatchObject({ running: true })
      const qmp = yield* vm.qmp
      const stop = yield* vm.executeAndWait("stop", undefined, "STOP")
      expect(stop.event.event).toBe("STOP")
      yield* fake.qmp.emit("RESET", { guest: true, reason: "guest-reset" })
      expect((yield* qmp.eventWait("RESET")).data).toEqual({ guest: true, reason: "guest-reset" })
      yield* vm.shutdown()
      expect(yield* vm.state).toBe("stopped")
      expect(yield* vm.exitStatus).toEqual(Option.some({ exitCode: 0, signal: null }))
      expect((yield* sent(fake)).filter((c) => c === "quit")).toHaveLength(1)
      expect(warnings).toEqual([])
    }).pipe(Effect.provide(fakeWithWarnings("fake-clean", warnings)))
  })

  it.scoped("a user's quit, however it was sent, is not repeated by the shutdown", () =>
    Effect.gen(function*() {
      const { fake, vm } = yield* services
      const qmp = yield* vm.qmp
      yield* qmp.executeAndWait("quit", undefined, "SHUTDOWN")
      yield* vm.shutdown()
      expect((yield* sent(fake)).filter((c) => c === "quit")).toHaveLength(1)
      expect(yield* vm.exitCode).toEqual(Option.some(0))
    }).pipe(Effect.provide(FakeMachine.layer({ baseTempDir: makeBaseDir("fake-user-quit") }))))

  it.scoped("a QEMU that ignores quit: the timeout, then SIGKILL and AbnormalShutdown", () =>
    Effect.gen(function*() {
      const { fake, vm } = yield* services
      const shutdown = yield* Effect.fork(Effect.flip(vm.shutdown({ timeout: "5 seconds" })))
      // The quit is in (and answered): only the exit is missing; time passes on the test clock.
      yield* sent(fake).pipe(Effect.zipLeft(realSleep(1)), Effect.repeat({ until: (commands) => commands.includes("quit") }))
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(shutdown)
      expect(error).toMatchObject({ _tag: "AbnormalShutdown", signal: "SIGKILL" })
      expect(yield* fake.signals).toEqual(["SIGKILL"])
    }).pipe(Effect.provide(FakeMachine.layer({ baseTempDir: makeBaseDir("fake-ignore") }, { onQuit: "ignore" }))))

  it.live("leaving the scope of a QEMU that ignores quit: the warnings carry the machine's name and pid", () =>
    Effect.gen(function*() {
      const warnings: Array<AnnotatedWarning> = []
      const pid = yield* Effect.map(Machine.Machine, (vm) => vm.pid).pipe(
        Effect.provide(FakeMachine.layer(
          { baseTempDir: makeBaseDir("fake-annotated"), name: "annotated", shutdownTimeout: "50 millis" },
          { onQuit: "ignore" }
        )),
        Effect.provide(annotatedWarningsInto(warnings))
      )
      // The killed QEMU's signal, then the failed graceful shutdown: both say which machine.
      expect(warnings).toEqual([
        { message: expect.stringContaining("qemu received signal SIGKILL"), annotations: { machine: "annotated", pid } },
        { message: expect.stringContaining("Could not perform graceful shutdown"), annotations: { machine: "annotated", pid } }
      ])
    }))

  it.scoped("a guest that powers off by itself: wait is clean and keeps the exit code", () =>
    Effect.gen(function*() {
      const { fake, vm } = yield* services
      yield* fake.exit({ exitCode: 3, signal: null })
      yield* vm.wait()
      expect(yield* vm.exitCode).toEqual(Option.some(3))
      expect(yield* sent(fake)).not.toContain("quit")
    }).pipe(Effect.provide(FakeMachine.layer({ baseTempDir: makeBaseDir("fake-wait") }))))

  it.scoped("kill: SIGKILL, no warning, and the machine is stopped", () => {
    const warnings: Array<string> = []
    return Effect.gen(function*() {
      const { fake, vm } = yield* services
      yield* vm.kill
      expect(yield* fake.signals).toEqual(["SIGKILL"])
      expect(yield* vm.exitStatus).toEqual(Option.some({ exitCode: null, signal: "SIGKILL" }))
      expect((yield* Effect.flip(vm.execute("query-status")))._tag).toBe("MachineStateError")
      expect(warnings).toEqual([])
    }).pipe(Effect.provide(fakeWithWarnings("fake-kill", warnings)))
  })

  it.scoped("the console: guest output is waited for, input reaches the guest", () =>
    Effect.gen(function*() {
      const { fake, vm } = yield* services
      const console = yield* vm.console
      yield* fake.guestWrite("login: ")
      expect((yield* console.waitFor("login:")).match).toBe("login:")
      const typed = yield* Effect.fork(Stream.runHead(fake.guestInput))
      yield* console.write("root\r")
      expect(Option.map(yield* Fiber.join(typed), (bytes) => Buffer.from(bytes).toString())).toEqual(Option.some("root\r"))
    }).pipe(Effect.provide(FakeMachine.layer({ baseTempDir: makeBaseDir("fake-console"), console: {} }))))
})
