/**
 * The console's log file when the disk fails (issue 14): memory stays flat
 * and the loss is reported once, with a count.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { PassThrough } from "node:stream"
import * as ConsoleSocket from "../../src/ConsoleSocket.js"
import * as Transport from "../../src/internal/transport.js"
import { type AnnotatedWarning, annotatedWarningsInto, warningsInto } from "../helpers.js"

/**
 * Buffer memory after full collections (vitest runs the workers with
 * --expose-gc). V8 frees ArrayBuffer backing stores on a background thread,
 * so one `gc()` can leave freed buffers counted: collect, let a macrotask
 * pass, and repeat until the figure stops falling.
 */
const buffersAfterGc = Effect.gen(function*() {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) return yield* Effect.dieMessage("run with node --expose-gc")
  let last = Infinity
  for (;;) {
    gc()
    yield* Effect.async<void>((resume) => void setImmediate(() => resume(Effect.void)))
    const now = process.memoryUsage().arrayBuffers
    if (now >= last) return now
    last = now
  }
})

/** A console in `scope` over a stand-in guest, logging to /dev/full: every write fails with ENOSPC, as a full disk's. */
const consoleOnFullDisk = (scope: Scope.Scope, bufferSize?: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const full = yield* fs.open("/dev/full", { flag: "w" }).pipe(Scope.extend(scope))
    const guest = new PassThrough()
    const transport = yield* Transport.fromDuplex(guest, "flooding guest").pipe(Scope.extend(scope))
    const console = yield* ConsoleSocket.fromTransport(transport, { logFile: full, bufferSize }).pipe(Scope.extend(scope))
    return { console, guest }
  })

it.live("a log on a full disk (ENOSPC): memory stays flat, the loss is reported once with its count", () => {
  const warnings: Array<string> = []
  return Effect.gen(function*() {
    const scope = yield* Scope.make()
    const { console, guest } = yield* consoleOnFullDisk(scope, 64 * 1024)
    const before = yield* buffersAfterGc
    const chunk = Buffer.alloc(1024 * 1024, 0x41)
    const total = 96
    for (let i = 0; i < total; i++) {
      guest.write(Buffer.from(chunk))
      // Let the console read each chunk as it comes, as a socket would deliver it.
      yield* Effect.sleep("1 millis")
    }
    yield* console.bytesReceived.pipe(
      Effect.zipLeft(Effect.sleep("1 millis")),
      Effect.repeat({ until: (received) => received >= total * chunk.length })
    )
    const grown = (yield* buffersAfterGc) - before
    // Without a bound the 96 MiB would wait for a log writer that can no longer write; the bound is 8 MiB waiting plus one 1 MiB write.
    expect(grown).toBeLessThan(12 * 1024 * 1024)
    yield* Scope.close(scope, Exit.void)
    const reports = warnings.filter((w) => w.includes("not written to"))
    expect(reports).toHaveLength(1)
    expect(reports[0]).toMatch(/\d+ bytes of console output not written to the console log \(writing failed: .*ENOSPC|no space/i)
    const lost = Number(/(\d+) bytes/.exec(reports[0]!)![1])
    expect(lost).toBeGreaterThan(total * chunk.length - 16 * 1024 * 1024)
    expect(lost).toBeLessThanOrEqual(total * chunk.length)
  }).pipe(Effect.provide(NodeFileSystem.layer), Effect.provide(warningsInto(warnings)))
})

// The report is made by a finalizer added with `Effect.addFinalizer`, which runs with the fiber refs of the fiber that
// added it: a machine's console reports under the machine's name and pid even when a shutdown closes it.
it.live("the loss report carries the log annotations of where the console was opened, whoever closes it", () => {
  const reports: Array<AnnotatedWarning> = []
  return Effect.gen(function*() {
    const scope = yield* Scope.make()
    // Opened as a launch opens it: under the machine's annotations.
    const { console, guest } = yield* consoleOnFullDisk(scope).pipe(Effect.annotateLogs({ machine: "annotated", pid: 42 }))
    guest.write("login: ")
    yield* console.waitFor("login:")
    // Closed from outside those annotations, as a shutdown closes it.
    yield* Scope.close(scope, Exit.void)
    expect(reports).toEqual([
      { message: expect.stringContaining("not written to"), annotations: { machine: "annotated", pid: 42 } }
    ])
  }).pipe(Effect.provide(NodeFileSystem.layer), Effect.provide(annotatedWarningsInto(reports)))
})
