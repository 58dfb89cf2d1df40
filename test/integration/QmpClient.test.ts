import { expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as Net from "node:net"
import type { Duplex } from "node:stream"
import * as QmpClient from "../../src/QmpClient.js"
import { describeQemu } from "../helpers.js"

/** A bare QEMU with `-machine none -nodefaults` and extra args; killed by the scope. */
const spawnQemu = (args: ReadonlyArray<string>, stdio: Array<"pipe" | "ignore"> = []) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      ChildProcess.spawn("qemu-system-x86_64", ["-machine", "none", "-nodefaults", "-display", "none", ...args], {
        stdio: ["ignore", "ignore", "inherit", ...stdio]
      })
    ),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer().listen(0, "127.0.0.1", () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

describeQemu("QmpClient against real QEMU", () => {
  it.scopedLive("arguments QEMU's parser rejects fail at once as QMPEncodeError, and no later command is lost", () =>
    Effect.gen(function*() {
      const child = yield* spawnQemu(["-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control"], ["pipe"])
      const qmp = yield* QmpClient.make(child.stdio[3] as Duplex)
      const nested = (depth: number): unknown => depth === 0 ? 0 : [nested(depth - 1)]
      const promptly = Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "no answer within 5 s" })
      // Untyped on purpose: the arguments are not qom-list's.
      const qomList: string = "qom-list"
      // QEMU would answer these with errors that carry no id (and, for the deep one, a thousand of them).
      for (const args of [{ path: "/\ud800" }, { path: "/machine", x: nested(1023) }]) {
        const error = yield* Effect.flip(promptly(qmp.execute(qomList, args)))
        expect(error).toMatchObject({ _tag: "QMPEncodeError" })
        expect(yield* promptly(qmp.execute("query-status"))).toMatchObject({ running: true })
      }
      // 1024 deep is within QEMU's limit: QEMU itself answers (the argument is unknown to qom-list).
      const within = yield* Effect.flip(promptly(qmp.execute(qomList, { path: "/machine", x: nested(1022) })))
      expect(within).toMatchObject({ _tag: "QMPCommandError", desc: "Parameter 'x' is unexpected" })
    }))

  it.scopedLive("over the inherited socket pair: handshake, status, schema, stop/cont events, quit", () =>
    Effect.gen(function*() {
      const child = yield* spawnQemu(["-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control"], ["pipe"])
      const qmp = yield* QmpClient.make(child.stdio[3] as Duplex)
      expect(qmp.greeting.QMP.version.qemu.major).toBeGreaterThanOrEqual(7)
      expect(yield* qmp.execute("query-status")).toMatchObject({ status: "running", running: true })
      const schema = (yield* qmp.execute("query-qmp-schema")) as ReadonlyArray<unknown>
      expect(schema.length).toBeGreaterThan(500)
      expect(JSON.stringify(schema).length).toBeGreaterThan(100_000)
      const stop = yield* qmp.executeAndWait("stop", undefined, "STOP")
      expect(stop.event.event).toBe("STOP")
      const cont = yield* qmp.executeAndWait("cont", undefined, "RESUME")
      expect(cont.event.event).toBe("RESUME")
      const quit = yield* qmp.executeAndWait("quit", undefined, [{ name: "SHUTDOWN", match: { data: { guest: false } } }])
      expect(quit.event.data).toMatchObject({ reason: "host-qmp-quit" })
      const end = yield* qmp.awaitDisconnect
      expect(["Eof", "Error"]).toContain(end.reason)
    }))

  it.scopedLive("connects over TCP to QEMU's own server socket", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      yield* spawnQemu(["-qmp", `tcp:127.0.0.1:${port},server=on,wait=off`])
      const qmp = yield* QmpClient.connect({ host: "127.0.0.1", port: port }).pipe(
        Effect.retry({ times: 100, while: (e) => e._tag === "QMPConnectError", schedule: Schedule.spaced("20 millis") })
      )
      expect(yield* qmp.execute("query-status")).toMatchObject({ running: true })
    }))

  it.scopedLive("connects to a unix path where QEMU listens", () =>
    Effect.gen(function*() {
      const path = `/tmp/qm-qmp-${process.pid}-${Date.now()}.sock`
      yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.rmSync(path, { force: true })))
      yield* spawnQemu(["-qmp", `unix:${path},server=on,wait=off`])
      const qmp = yield* QmpClient.connect({ path: path }).pipe(
        Effect.retry({ times: 100, while: (e) => e._tag === "QMPConnectError", schedule: Schedule.spaced("20 millis") })
      )
      expect(yield* qmp.hmp("info status")).toContain("running")
    }))
})
