/**
 * The typed QMP surface, checked by the compiler: vitest's typecheck runs
 * this file with tsc as part of `npm test`, and every assertion here is a
 * type error when the types drift.
 */
import { describe, expectTypeOf, it } from "vitest"
import { Effect, type Option, type Stream } from "effect"
import type * as Generated from "../../src/generated/qapi.js"
import type * as Qapi from "../../src/Qapi.js"
import type * as QmpClient from "../../src/QmpClient.js"
import * as FakeQmp from "../../src/testing/FakeQmp.js"

describe("typed execute and events", () => {
  it("types results, arguments and events by name (compile-time)", () => {
    type Client = QmpClient.QmpClientService
    expectTypeOf<ReturnType<typeof run>>().toEqualTypeOf<
      Effect.Effect<Generated.QueryStatusResult, QmpClient.CommandError | import("../../src/Errors.js").QMPDecodeError>
    >()
    function run(qmp: Client) {
      return qmp.execute("query-status")
    }
    const typed = (qmp: Client) =>
      Effect.gen(function*() {
        const status = yield* qmp.execute("query-status")
        expectTypeOf(status.status).toEqualTypeOf<Generated.QueryStatusResultStatus>()
        const info = yield* qmp.execute("add-fd", { "fdset-id": 1 })
        expectTypeOf(info.fd).toEqualTypeOf<number>()
        // @ts-expect-error: blockdev-del needs node-name
        yield* qmp.execute("blockdev-del")
        // @ts-expect-error: a misspelt argument
        yield* qmp.execute("stop", { now: true })
        // @ts-expect-error: a wrong argument type
        yield* qmp.execute("human-monitor-command", { "command-line": 42 })
        // Names outside the schema stay untyped.
        expectTypeOf(yield* qmp.execute("x-not-in-7.2", { any: "thing" })).toEqualTypeOf<unknown>()
        const shutdown = yield* qmp.eventWait("SHUTDOWN")
        expectTypeOf(shutdown.data.reason).toEqualTypeOf<Qapi.EventData<"SHUTDOWN">["reason"]>()
        expectTypeOf(shutdown.data.reason).toExtend<"host-qmp-quit" | "guest-shutdown" | string>()
        expectTypeOf(shutdown.event).toEqualTypeOf<"SHUTDOWN">()
        const stop = yield* qmp.eventWait("STOP")
        expectTypeOf(stop.data).toEqualTypeOf<Generated.Empty | undefined>()
      })
    expectTypeOf(typed).toBeFunction()
  })

})

describe("typed all the way (issue 16)", () => {
  it("executeAndWait is typed like execute and eventWait together", () => {
    const run = (qmp: QmpClient.QmpClientService) =>
      Effect.gen(function*() {
        const { event, result } = yield* qmp.executeAndWait("stop", undefined, "STOP")
        expectTypeOf(result).toEqualTypeOf<Qapi.CommandResult<"stop">>()
        expectTypeOf(event.event).toEqualTypeOf<"STOP">()
        const reset = yield* qmp.executeAndWait("system_reset", undefined, [
          { name: "RESET", match: { data: { reason: "host-qmp-system-reset" } } }
        ])
        expectTypeOf(reset.event.data.reason).toEqualTypeOf<Qapi.EventData<"RESET">["reason"]>()
        // @ts-expect-error: blockdev-del needs its arguments here too
        yield* qmp.executeAndWait("blockdev-del", undefined, "JOB_STATUS_CHANGE")
        // @ts-expect-error: a pattern with a field the event does not have
        yield* qmp.executeAndWait("system_reset", undefined, [{ name: "RESET", match: { data: { nope: 1 } } }])
      })
    expectTypeOf(run).toBeFunction()
  })

  it("eventsNamed and subscribeNamed narrow data by event; events carry their arrival time", () => {
    const run = (qmp: QmpClient.QmpClientService) =>
      Effect.gen(function*() {
        const stream = qmp.eventsNamed("SHUTDOWN", "RESET")
        type Named = Stream.Stream.Success<typeof stream>
        const narrow = (event: Named) => event.event === "SHUTDOWN" ? event.data.reason : event.data.guest
        expectTypeOf(narrow).returns.toEqualTypeOf<Qapi.EventData<"SHUTDOWN">["reason"] | boolean>()
        const subscription = yield* qmp.subscribeNamed("STOP", "RESUME")
        const next = yield* subscription.take
        expectTypeOf(next).toEqualTypeOf<Option.Option<Qapi.TypedEvent<"STOP" | "RESUME">>>()
        const any = yield* qmp.eventWait("x-custom-event")
        expectTypeOf(any.receivedAt).toEqualTypeOf<number>()
        // @ts-expect-error: SHUTDOWN's data has no "nope"
        yield* qmp.eventWait("SHUTDOWN", { match: { data: { nope: true } } })
        const matched = yield* qmp.eventWait("SHUTDOWN", { match: { data: { guest: true } } })
        expectTypeOf(matched.receivedAt).toEqualTypeOf<number>()
      })
    expectTypeOf(run).toBeFunction()
  })

  it("FakeQmp handlers are typed by command name", () => {
    FakeQmp.layer({
      commands: {
        "query-status": () => FakeQmp.reply({ status: "paused", running: false }),
        // @ts-expect-error: a misspelt field of query-status's result
        "query-name": () => FakeQmp.reply({ nmae: "x" }),
        "blockdev-del": (args) => FakeQmp.reply(args?.["node-name"] === "n0" ? {} : {}),
        "x-not-in-the-schema": (args) => FakeQmp.reply({ anything: args })
      }
    })
  })
})
