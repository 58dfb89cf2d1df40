/**
 * The typed QMP surface, checked by the compiler: vitest's typecheck runs
 * this file with tsc as part of `npm test`, and every assertion here is a
 * type error when the types drift.
 */
import { describe, expectTypeOf, it } from "vitest"
import { Effect } from "effect"
import type * as Generated from "../../src/generated/qapi.js"
import type * as Qapi from "../../src/Qapi.js"
import type * as QmpClient from "../../src/QmpClient.js"

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
