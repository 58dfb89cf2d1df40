/**
 * Every public operation runs in a span (issue 15): the tree a machine's
 * session makes, recorded with a tracer, against a fake QEMU.
 */
import { expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import * as Machine from "../../src/Machine.js"
import * as FakeMachine from "../../src/testing/FakeMachine.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"
import { makeBaseDir, recordingTracer } from "../helpers.js"

it.live("launch phases, each command, event and console waits and the shutdown path nest under the caller's span", () => {
  const { spans, tracer, tree } = recordingTracer()
  return Effect.gen(function*() {
    const vm = yield* Machine.Machine
    const fake = yield* FakeMachine.FakeMachine
    const qmp = yield* vm.qmp
    yield* vm.execute("query-status")
    yield* vm.executeAndWait("stop", undefined, "STOP")
    yield* fake.qmp.emit("RESET")
    yield* qmp.eventWait("RESET")
    yield* fake.guestWrite("login: ")
    yield* (yield* vm.console).waitFor("login:")
    yield* vm.shutdown()
  }).pipe(
    Effect.provide(FakeMachine.layer({ baseTempDir: makeBaseDir("spans"), name: "traced", console: {} })),
    Effect.withSpan("test"),
    Effect.withTracer(tracer),
    Effect.tap(() => {
      expect(tree()).toEqual(expect.arrayContaining([
        "test > Machine.launch",
        "Machine.launch > launch.setup",
        "Machine.launch > launch.spawn",
        "Machine.launch > launch.qmp",
        "launch.qmp > QmpClient.connect",
        "QmpClient.connect > QMP qmp_capabilities",
        "Machine.launch > launch.console",
        "test > QMP query-status",
        "test > QMP executeAndWait",
        "QMP executeAndWait > QMP stop",
        "test > QMP eventWait",
        "test > ConsoleSocket.waitFor",
        "test > Machine.shutdown",
        "Machine.shutdown > QMP quit"
      ]))
      const named = (name: string) => spans.find((span) => span.name === name)!
      const status = named("QMP query-status")
      expect(Object.fromEntries(status.attributes)).toMatchObject({
        "qemu.machine": "traced",
        "qmp.command": "query-status",
        "qmp.id": expect.any(Number)
      })
      expect(typeof status.attributes.get("qemu.pid")).toBe("number")
      expect(named("Machine.shutdown").attributes.get("shutdown.path")).toBe("soft")
      expect(spans.every((span) => span.status._tag === "Ended")).toBe(true)
    })
  )
})

it.live("a failing command's span carries the error class", () => {
  const { spans, tracer } = recordingTracer()
  return Effect.gen(function*() {
    const vm = yield* Machine.Machine
    yield* Effect.flip(vm.execute("query-status", undefined, { timeout: "1 millis" }))
    const span = spans.find((s) => s.name === "QMP query-status")!
    expect(span.attributes.get("qmp.error")).toBe("QMPTimeout")
    expect(span.status._tag === "Ended" && span.status.exit._tag).toBe("Failure")
  }).pipe(
    Effect.provide(FakeMachine.layer(
      { baseTempDir: makeBaseDir("spans-error") },
      { commands: { "query-status": () => FakeQmp.noReply } }
    )),
    Effect.withTracer(tracer)
  )
})

it.live("under Effect's built-in tracer the library makes no spans, and annotates none of the caller's", () =>
  Effect.gen(function*() {
    const caller = yield* Effect.currentSpan
    yield* Effect.scoped(Effect.gen(function*() {
      const context = yield* Layer.build(FakeMachine.layer({ baseTempDir: makeBaseDir("spans-builtin"), name: "untraced" }))
      const vm = Context.get(context, Machine.Machine)
      yield* vm.execute("query-status")
      yield* vm.shutdown()
    }))
    expect(Object.fromEntries(caller.attributes)).toEqual({})
  }).pipe(Effect.withSpan("caller")))
