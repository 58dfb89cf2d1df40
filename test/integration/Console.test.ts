import { expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Fiber, Option, Stream } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Machine from "../../src/Machine.js"
import { seabios } from "../../src/cli/demo.js"
import type { MachineConfig } from "../../src/MachineConfig.js"
import * as TempFiles from "../../src/TempFiles.js"
import * as EchoGuest from "../../src/testing/EchoGuest.js"
import { awaitSuspended, childPids, describeQemu, leftovers, makeBaseDir } from "../helpers.js"

/** Heap in use after a full collection (vitest runs the workers with --expose-gc). */
const heapAfterGc = () => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("run with node --expose-gc")
  gc()
  return process.memoryUsage().heapUsed
}

/** The echo guest booted from a raw image written into a TempFiles dir. */
const echoGuest = (baseTempDir: string, extra: MachineConfig = {}) =>
  Effect.gen(function*() {
    const temp = yield* TempFiles.TempFiles
    const image = yield* temp.writeFile("echo-guest.img", EchoGuest.image())
    return Machine.launch(EchoGuest.machineConfig(image, { baseTempDir, ...extra }))
  }).pipe(Effect.flatten)

describeQemu("ConsoleSocket with real guests", () => {
  it.live("shows the SeaBIOS banner and 'No bootable device' of the default guest", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("seabios")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* Machine.launch({ ...seabios, baseTempDir: base })
        const console = yield* vm.console
        const banner = yield* console.waitFor(/SeaBIOS \(version ([^)]+)\)/, { timeout: "20 seconds" })
        expect(banner.groups[0]).toMatch(/\d+\.\d+/)
        const end = yield* console.waitFor("No bootable device", { timeout: "20 seconds" })
        expect(end.before).toContain("Booting from Hard Disk")
      }))
      expect(childPids()).toEqual([])
      expect(leftovers(base)).toEqual([])
    }))

  it.live("echo round trip, a pattern split across writes, and the log file equals the stream", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("echo")
      const logDir = makeBaseDir("echo-logs")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* echoGuest(base, { console: { logFile: true }, logDir, name: "echo" })
        const console = yield* vm.console
        const streamed = yield* Stream.runCollect(console.output).pipe(Effect.fork)
        yield* console.waitFor("ECHO GUEST READY\r\n", { timeout: "20 seconds" })
        const echoed = yield* console.execAndWait("hello", "hello\r\n", { timeout: "10 seconds" })
        expect(echoed.match).toBe("hello\r\n")
        // A pattern that arrives in several chunks.
        // (The guest treats 'f' and 'q' as commands: keep them out of the text.)
        // Each part is echoed before the next is sent, so the text arrives in several chunks.
        const echoedText = (text: string) =>
          console.recent.pipe(Effect.zipLeft(Effect.sleep("5 millis")), Effect.repeat({ until: (recent) => recent.endsWith(text) }))
        yield* console.write("123")
        yield* echoedText("123")
        yield* console.write("456")
        yield* echoedText("456")
        yield* console.write("789\r")
        const split = yield* console.waitFor(/123(456)789/, { timeout: "10 seconds" })
        expect(split.groups).toEqual(["456"])
        // Waits consume: the same text is not matched twice.
        const again = yield* Effect.flip(console.waitFor("123456789", { timeout: "300 millis" }))
        expect(again._tag).toBe("ConsoleTimeout")
        expect(again._tag === "ConsoleTimeout" && again.tail).toContain("123456789")
        yield* vm.shutdown()
        const bytes = Buffer.concat(Chunk.toArray(yield* Fiber.join(streamed)))
        const logged = NodeFs.readFileSync(NodePath.join(logDir, "echo-console.log"))
        expect(logged.equals(bytes)).toBe(true)
        expect(logged.toString()).toContain("ECHO GUEST READY")
      }).pipe(Effect.provide(TempFiles.layer())))
      expect(NodeFs.statSync(NodePath.join(logDir, "echo-console.log")).mode & 0o777).toBe(0o600)
      expect(leftovers(base)).toEqual([])
    }))

  it.live("lines streams the console line by line", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("lines")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* echoGuest(base)
        const console = yield* vm.console
        const lines = yield* console.lines.pipe(
          Stream.dropWhile((line) => !line.includes("READY")),
          Stream.take(3),
          Stream.runCollect,
          Effect.fork
        )
        yield* console.waitFor("READY", { timeout: "20 seconds" })
        yield* console.write("one\rtwo\r")
        const [first, ...rest] = Chunk.toArray(yield* Fiber.join(lines))
        // SeaBIOS's "Booting from Hard Disk..." has no newline before the guest's banner.
        expect(first).toMatch(/ECHO GUEST READY$/)
        expect(rest).toEqual(["one", "two"])
      }).pipe(Effect.provide(TempFiles.layer())))
    }))

  it.live("interruptUntil sends Enter until the pattern shows", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("interrupt-until")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* echoGuest(base)
        const console = yield* vm.console
        yield* console.waitFor("READY", { timeout: "20 seconds" })
        // The guest echoes each "x\r" as "x\r\n": the third one completes the pattern.
        const seen = yield* console.interruptUntil("x\r\nx\r\nx\r\n", {
          enter: "x\r",
          interval: "50 millis",
          timeout: "10 seconds"
        })
        expect(seen.match).toBe("x\r\nx\r\nx\r\n")
      }).pipe(Effect.provide(TempFiles.layer())))
    }))

  it.live("a guest that powers off by itself: wait returns with its exit code", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("poweroff")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* echoGuest(base)
        const console = yield* vm.console
        yield* console.waitFor("READY", { timeout: "20 seconds" })
        yield* console.write("q")
        yield* vm.wait(Duration.seconds(10))
        // isa-debug-exit: (1 << 1) | 1
        expect(yield* vm.exitCode).toEqual(Option.some(3))
      }).pipe(Effect.provide(TempFiles.layer())))
      expect(childPids()).toEqual([])
      expect(leftovers(base)).toEqual([])
    }))

  it.live("waiters fail with ConsoleClosed at once when the console closes", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("closed")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* echoGuest(base)
        const console = yield* vm.console
        // The guest is up (its banner is in), and a wait is waiting.
        yield* console.recent.pipe(
          Effect.zipLeft(Effect.sleep("5 millis")),
          Effect.repeat({ until: (recent) => recent.includes("ECHO GUEST READY") })
        )
        const waiting = yield* Effect.fork(console.waitFor("never printed", { timeout: "60 seconds" }))
        yield* awaitSuspended(waiting)
        const started = Date.now()
        yield* vm.shutdown()
        const error = yield* Fiber.join(waiting).pipe(Effect.flip)
        expect(error._tag).toBe("ConsoleClosed")
        expect(Date.now() - started).toBeLessThan(5000)
        expect((yield* Effect.flip(console.write("x")))._tag).toBe("ConsoleClosed")
        expect(yield* console.recent).toContain("ECHO GUEST READY")
      }).pipe(Effect.provide(TempFiles.layer())))
    }))

  it.live("the seed's path console (server=on,wait=off) works too", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("pathconsole")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* echoGuest(base, { console: { transport: "UnixPath" } })
        expect(vm.command.join(" ")).toContain("server=on,wait=off")
        const console = yield* vm.console
        yield* console.waitFor("READY", { timeout: "20 seconds" })
        yield* console.execAndWait("ping", "ping", { timeout: "10 seconds" })
      }).pipe(Effect.provide(TempFiles.layer())))
      expect(leftovers(base)).toEqual([])
    }))

  it.live("a guest flooding the console for 10 s does not stall QMP, and memory stays bounded", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("flood")
      yield* Effect.scoped(Effect.gen(function*() {
        const vm = yield* echoGuest(base, { console: { bufferSize: 64 * 1024 } })
        const console = yield* vm.console
        yield* console.waitFor("READY", { timeout: "20 seconds" })
        yield* console.write("f")
        yield* console.waitFor("FLOOD", { timeout: "10 seconds" })
        const heapBefore = heapAfterGc()
        const startBytes = yield* console.bytesReceived
        const started = Date.now()
        const rtts: Array<number> = []
        while (Date.now() - started < 10_000) {
          const t0 = performance.now()
          yield* vm.execute("query-status")
          rtts.push(performance.now() - t0)
          yield* Effect.sleep("50 millis")
        }
        rtts.sort((a, b) => a - b)
        const flooded = (yield* console.bytesReceived) - startBytes
        const heapGrowth = heapAfterGc() - heapBefore
        // Not a speed target (see bench:console), a liveness check: QMP answered
        // throughout. A stall would show as seconds; one slow sample on a loaded
        // 2-core machine (other test files run beside this one) is not a stall.
        expect(rtts.length).toBeGreaterThan(50)
        expect(rtts[Math.floor(rtts.length / 2)]).toBeLessThan(50)
        expect(rtts[rtts.length - 1]).toBeLessThan(1000)
        // The guest did flood (TCG's serial port gives about 200 KB/s here).
        expect(flooded).toBeGreaterThan(500_000)
        // What is kept is the buffer's own content: its size limit plus at most two 4 KiB pieces.
        expect((yield* console.recent).length).toBeLessThanOrEqual(64 * 1024 + 8 * 1024)
        expect((yield* console.unconsumed).length).toBeLessThanOrEqual(64 * 1024 + 8 * 1024)
        expect((yield* console.recent).length).toBeGreaterThan(32 * 1024)
        // Bounded: what is kept does not grow with what went through.
        expect(heapGrowth).toBeLessThan(Math.min(1024 * 1024, flooded / 2))
      }).pipe(Effect.provide(TempFiles.layer())))
      expect(childPids()).toEqual([])
    }), 60_000)
})
