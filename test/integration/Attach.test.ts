/**
 * Machine.attach against a real QEMU this library did not start (the test
 * spawns it with node:child_process): unix and TCP monitors, the pid found
 * from the socket, detach leaving it running, a second attach, shutdown by
 * quit, kill, one client at a time, a QEMU that ignores quit.
 */
import { expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeNet from "node:net"
import * as NodePath from "node:path"
import * as Machine from "../../src/Machine.js"
import * as EchoGuest from "../../src/testing/EchoGuest.js"
import { describeQemu, isAlive, makeBaseDir } from "../helpers.js"

/** QEMU started by hand, as another supervisor would; killed when the test ends if still alive. */
const startQemu = (monitor: string, extra: ReadonlyArray<string> = []) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      ChildProcess.spawn("qemu-system-x86_64", ["-machine", "none", "-nodefaults", "-display", "none", "-qmp", monitor, ...extra], {
        stdio: "ignore"
      })
    ),
    (child) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

/** Resolves when the child exits, with its code. */
const exited = (child: ChildProcess.ChildProcess) =>
  Effect.async<number | null>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.succeed(child.exitCode))
    child.once("exit", (code) => resume(Effect.succeed(code)))
  })

const freePort = Effect.async<number>((resume) => {
  const server = NodeNet.createServer().listen(0, "127.0.0.1", () => {
    const port = (server.address() as NodeNet.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

describeQemu("Machine.attach (real QEMU started elsewhere)", () => {
  it.scopedLive("unix: pid and command from the socket; detach leaves it running; a second attach gets a fresh greeting; shutdown quits", () =>
    Effect.gen(function*() {
      const path = NodePath.join(makeBaseDir("attach-unix"), "qmp.sock")
      const child = yield* startQemu(`unix:${path},server=on,wait=off`, ["-name", "adopted"])
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* retryConnect(() => Machine.attach({ monitor: { path } }))
        expect(vm.pid).toEqual(Option.some(child.pid))
        expect(vm.command).toContain("adopted")
        expect(vm.address).toBe(`unix:${path}`)
        expect((yield* vm.execute("query-status")).status).toBe("running")
        expect(yield* vm.isRunning).toBe(true)
        const missing = yield* Effect.flip(vm.console)
        expect(missing._tag).toBe("MachineStateError")
      }))
      // The scope ended: detached, QEMU still runs.
      expect(isAlive(child.pid!)).toBe(true)

      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.attach({ monitor: { path } })
        const qmp = yield* vm.qmp
        expect(qmp.greeting.QMP.version.qemu.major).toBeGreaterThanOrEqual(7)
        yield* vm.execute("stop")
        expect((yield* vm.execute("query-status")).status).toBe("paused")
        yield* vm.shutdown()
        expect(yield* vm.state).toBe("stopped")
        expect((yield* Effect.flip(vm.qmp))._tag).toBe("MachineStateError")
      }))
      expect(yield* exited(child)).toBe(0)
    }))

  it.scopedLive("tcp: the pid is found from the peer socket; onClose: shutdown quits QEMU at the scope's end", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const child = yield* startQemu(`tcp:127.0.0.1:${port},server=on,wait=off`)
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* retryConnect(() => Machine.attach({ monitor: { host: "127.0.0.1", port }, onClose: "shutdown", name: "tcp-vm" }))
        expect(vm.pid).toEqual(Option.some(child.pid))
        expect(vm.name).toBe("tcp-vm")
        expect((yield* vm.execute("query-status")).running).toBe(true)
      }))
      expect(yield* exited(child)).toBe(0)
    }))

  it.scopedLive("one client at a time: a second attach times out waiting for its greeting; kill ends QEMU", () =>
    Effect.gen(function*() {
      const path = NodePath.join(makeBaseDir("attach-busy"), "qmp.sock")
      const child = yield* startQemu(`unix:${path},server=on,wait=off`)
      const first = yield* retryConnect(() => Machine.attach({ monitor: { path } }))
      const second = yield* Effect.flip(Machine.attach({ monitor: { path }, connectTimeout: "500 millis" }))
      expect(second._tag).toBe("QMPGreetingError")
      yield* first.kill
      expect(yield* first.state).toBe("stopped")
      expect(yield* exited(child)).toBe(null)
      expect(child.signalCode).toBe("SIGKILL")
    }))

  it.scopedLive("a QEMU that ignores quit (stopped by SIGSTOP): shutdown fails with AbnormalShutdown after SIGKILL", () =>
    Effect.gen(function*() {
      const path = NodePath.join(makeBaseDir("attach-stopped"), "qmp.sock")
      const child = yield* startQemu(`unix:${path},server=on,wait=off`)
      const vm = yield* retryConnect(() => Machine.attach({ monitor: { path } }))
      process.kill(child.pid!, "SIGSTOP")
      const error = yield* Effect.flip(vm.shutdown({ timeout: "1 second" }))
      expect(error._tag).toBe("AbnormalShutdown")
      expect(error.message).toContain("did not exit within 1s")
      // Attached machines keep a flight record too: the greeting, the negotiation, the quit.
      const record = (error as { flightRecord?: import("../../src/FlightRecord.js").FlightRecord }).flightRecord!
      expect(record.pid).toBe(child.pid)
      expect(record.command.join(" ")).toContain(`unix:${path}`)
      expect(record.qmp.map((m) => m.text).join("\n")).toMatch(/"QMP"[\s\S]*qmp_capabilities[\s\S]*"quit"/)
      yield* exited(child)
      expect(child.signalCode).toBe("SIGKILL")
    }))

  it.scopedLive("with its console socket: the echo guest answers through the attached console", () =>
    Effect.gen(function*() {
      const dir = makeBaseDir("attach-console")
      const imagePath = NodePath.join(dir, "echo.img")
      NodeFs.writeFileSync(imagePath, EchoGuest.image())
      const path = NodePath.join(dir, "qmp.sock")
      const consolePath = NodePath.join(dir, "console.sock")
      yield* startQemu(`unix:${path},server=on,wait=off`, [
        "-machine", "pc,graphics=off", "-nic", "none", "-m", "16",
        "-drive", `file=${imagePath},format=raw,if=ide`,
        "-chardev", `socket,id=c,path=${consolePath},server=on,wait=off`, "-serial", "chardev:c"
      ])
      const vm = yield* retryConnect(() => Machine.attach({ monitor: { path }, console: { path: consolePath }, onClose: "shutdown" }))
      const console = yield* vm.console
      yield* console.waitFor(EchoGuest.BANNER, { timeout: "30 seconds" })
      yield* console.write("hello")
      yield* console.waitFor("hello", { timeout: "10 seconds" })
    }))

  it.scopedLive("nothing listening: QMPConnectError naming the address", () =>
    Effect.gen(function*() {
      const path = NodePath.join(makeBaseDir("attach-none"), "qmp.sock")
      const error = yield* Effect.flip(Machine.attach({ monitor: { path }, connectTimeout: "1 second" }))
      expect(error._tag).toBe("QMPConnectError")
      expect(error.message).toContain(path)
    }))
})

/** QEMU creates its socket a moment after spawn: retry the connect (only) until it is there. */
function retryConnect<A, E extends { readonly _tag: string }, R>(attach: () => Effect.Effect<A, E, R>) {
  return Effect.suspend(attach).pipe(
    Effect.tapError((e) => e._tag === "QMPConnectError" ? Effect.sleep("20 millis") : Effect.void),
    Effect.retry({ while: (e) => e._tag === "QMPConnectError", times: 250 })
  )
}
