/**
 * A block job and a live migration (docs/devices.md): mirror a disk image
 * to another, then move the echo guest to a second QEMU and talk to it there.
 * Run: npx tsx examples/jobs-and-migration.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Chunk, Console, Effect, Fiber, Stream } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { Jobs, Machine, Migration } from "../src/index.js" // from "qemu-machine" in your project
import * as EchoGuest from "../src/testing/EchoGuest.js" // "qemu-machine/testing/EchoGuest"

const program = Effect.gen(function*() {
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "jobs-example-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true })))
  const image = NodePath.join(dir, "echo.img")
  NodeFs.writeFileSync(image, EchoGuest.image())
  NodeFs.writeFileSync(NodePath.join(dir, "copy.raw"), Buffer.alloc(512))

  const config = EchoGuest.machineConfig(image)
  const source = yield* Machine.launch(config)
  yield* (yield* source.console).waitFor(EchoGuest.BANNER)
  const qmp = yield* source.qmp

  // A block job: mirror the guest's disk image to copy.raw, followed to its end.
  yield* source.executeRaw("blockdev-add", {
    driver: "raw", "node-name": "copy", file: { driver: "file", filename: NodePath.join(dir, "copy.raw") }
  })
  const disk = (yield* source.execute("query-block"))[0]!
  const job = yield* Jobs.runJob(
    qmp,
    "mirror0",
    source.execute("blockdev-mirror", {
      "job-id": "mirror0", device: disk.inserted!["node-name"]!, target: "copy", sync: "full", "auto-dismiss": false
    }),
    { complete: true, timeout: "1 minute" } // a mirror waits in `ready` until job-complete
  )
  yield* Console.log(`job ${job.id}: ${job.statuses.join(" → ")} (${job.total} bytes)`)

  // A migration: the destination is the same machine, waiting for its state.
  const destination = yield* Machine.launch({ ...config, args: [...config.args ?? [], "-incoming", "defer"] })
  const progress = yield* Migration.progress(qmp, "10 millis").pipe(Stream.runCollect, Effect.fork)
  yield* Migration.migrate(qmp, yield* destination.qmp, { uri: `unix:${NodePath.join(dir, "migration.sock")}` })
  const samples = yield* Fiber.join(progress)
  const last = Chunk.last(samples)
  yield* Console.log(`migrated: ${last._tag === "Some" ? `${last.value.status}, ${last.value.transferred} bytes of RAM sent` : "too fast to sample"}`)

  // The guest now runs on the destination.
  const console = yield* destination.console
  yield* console.write("hello")
  yield* console.waitFor("hello", { timeout: "10 seconds" })
  yield* Console.log(`the destination's guest echoed; the source is ${(yield* source.execute("query-status")).status}`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
