/**
 * Block jobs and live migration on real QEMU: a mirror between two raw files
 * (statuses, completion at ready, the copy checked byte for byte), a mirror
 * whose target fails every write (blkdebug) ending in JobFailed with QEMU's
 * error, progress from query-jobs; the echo guest migrated over a unix socket
 * and answering on the destination's console, and a migration to nowhere.
 */
import { expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Stream } from "effect"
import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Jobs from "../../src/Jobs.js"
import * as Machine from "../../src/Machine.js"
import * as Migration from "../../src/Migration.js"
import * as EchoGuest from "../../src/testing/EchoGuest.js"
import { describeQemu, makeBaseDir, noneMachine } from "../helpers.js"

const MiB = 1024 * 1024

/** Two raw images in `dir`: `src.raw` with random bytes, `dst.raw` zeroed; both opened as nodes `src` and `dst`. */
const mirrorSetup = (dir: string, vm: Machine.MachineService, target?: Record<string, unknown>) =>
  Effect.gen(function*() {
    const data = NodeCrypto.randomBytes(4 * MiB)
    NodeFs.writeFileSync(NodePath.join(dir, "src.raw"), data)
    NodeFs.writeFileSync(NodePath.join(dir, "dst.raw"), Buffer.alloc(4 * MiB))
    const file = (name: string) => ({ driver: "file", filename: NodePath.join(dir, name) })
    yield* vm.executeRaw("blockdev-add", { driver: "raw", "node-name": "src", file: file("src.raw") })
    yield* vm.executeRaw("blockdev-add", { driver: "raw", "node-name": "dst", file: target ?? file("dst.raw") })
    return data
  })

const mirror = (qmp: Machine.MachineService, id: string) =>
  qmp.executeRaw("blockdev-mirror", { "job-id": id, device: "src", target: "dst", sync: "full", "auto-dismiss": false }).pipe(
    Effect.flatMap((reply) => "error" in reply ? Effect.dieMessage(JSON.stringify(reply)) : Effect.void)
  )

describeQemu("block jobs (real QEMU)", () => {
  it.scopedLive("a mirror runs to ready, is completed, concludes and is dismissed; the copy is exact", () =>
    Effect.gen(function*() {
      const dir = makeBaseDir("job-mirror")
      const vm = yield* Machine.launch(noneMachine(dir))
      const data = yield* mirrorSetup(dir, vm)
      const qmp = yield* vm.qmp
      const result = yield* Jobs.runJob(qmp, "m0", mirror(vm, "m0"), { complete: true, timeout: "60 seconds" })
      expect(result.type).toBe("mirror")
      expect(result.statuses).toEqual(expect.arrayContaining(["created", "running", "ready", "concluded"]))
      expect(result.statuses.at(-1)).toBe("concluded")
      expect(result.total).toBe(4 * MiB)
      expect(yield* qmp.execute("query-jobs")).toEqual([]) // dismissed
      yield* vm.shutdown()
      expect(NodeFs.readFileSync(NodePath.join(dir, "dst.raw")).equals(data)).toBe(true)
    }))

  it.scopedLive("progress follows a job from query-jobs; a ready mirror waits for job-complete", () =>
    Effect.gen(function*() {
      const dir = makeBaseDir("job-progress")
      const vm = yield* Machine.launch(noneMachine(dir))
      yield* mirrorSetup(dir, vm)
      const qmp = yield* vm.qmp
      const run = yield* Effect.fork(Jobs.runJob(qmp, "m1", mirror(vm, "m1")))
      const seen = yield* Jobs.progress(qmp, "m1", "5 millis").pipe(
        Stream.takeUntil((p) => p.status === "ready"),
        Stream.runCollect
      )
      const last = Chunk.last(seen)
      expect(last._tag === "Some" && last.value.status).toBe("ready")
      expect(last._tag === "Some" && last.value.current).toBe(4 * MiB)
      yield* qmp.execute("job-complete", { id: "m1" })
      const result = yield* Fiber.join(run)
      expect(result.statuses.at(-1)).toBe("concluded")
    }))

  it.scopedLive("a target that fails every write: JobFailed with QEMU's error and the statuses", () =>
    Effect.gen(function*() {
      const dir = makeBaseDir("job-fail")
      const vm = yield* Machine.launch(noneMachine(dir))
      yield* mirrorSetup(dir, vm, {
        driver: "blkdebug",
        image: { driver: "file", filename: NodePath.join(dir, "dst.raw") },
        "inject-error": [{ event: "write_aio", errno: 5 }]
      })
      const qmp = yield* vm.qmp
      const error = yield* Effect.flip(Jobs.runJob(qmp, "m2", mirror(vm, "m2"), { complete: true, timeout: "60 seconds" }))
      expect(error._tag).toBe("JobFailed")
      const failed = error as Jobs.JobFailed
      expect(failed.error).toMatch(/Input\/output error/)
      expect(failed.statuses.at(-1)).toBe("concluded")
      expect(yield* qmp.execute("query-jobs")).toEqual([])
    }))
})

describeQemu("live migration (real QEMU)", () => {
  it.scopedLive("the echo guest moves to the destination and answers on its console; the source is postmigrate", () =>
    Effect.gen(function*() {
      const dir = makeBaseDir("migrate")
      const image = NodePath.join(dir, "echo.img")
      NodeFs.writeFileSync(image, EchoGuest.image())
      const source = yield* Machine.launch(EchoGuest.machineConfig(image, { baseTempDir: dir }))
      yield* (yield* source.console).waitFor(EchoGuest.BANNER, { timeout: "30 seconds" })
      const base = EchoGuest.machineConfig(image, { baseTempDir: dir })
      const destination = yield* Machine.launch({ ...base, args: [...base.args ?? [], "-incoming", "defer"] })
      expect((yield* destination.execute("query-status")).status).toBe("inmigrate")

      const uri = `unix:${NodePath.join(dir, "migration.sock")}`
      const progress = yield* Effect.fork(Stream.runCollect(Migration.progress(yield* source.qmp, "2 millis")))
      yield* Migration.migrate(yield* source.qmp, yield* destination.qmp, { uri, timeout: "60 seconds" })
      const samples = Chunk.toReadonlyArray(yield* Fiber.join(progress))
      expect(samples.at(-1)?.status).toBe("completed")
      expect(samples.at(-1)?.transferred).toBeGreaterThan(0)
      expect((yield* source.execute("query-status")).status).toBe("postmigrate")
      expect((yield* destination.execute("query-status")).status).toBe("running")
      const console = yield* destination.console
      yield* console.write("migrated")
      yield* console.waitFor("migrated", { timeout: "10 seconds" })
    }))

  it.scopedLive("a destination of another machine type: MigrationFailed on the destination, with QEMU's reason", () =>
    Effect.gen(function*() {
      const dir = makeBaseDir("migrate-fail")
      const source = yield* Machine.launch(noneMachine(dir))
      const destination = yield* Machine.launch({ baseTempDir: dir, machineType: "pc", args: ["-nodefaults", "-incoming", "defer"] })
      const uri = `unix:${NodePath.join(dir, "migration.sock")}`
      const error = yield* Effect.flip(Migration.migrate(yield* source.qmp, yield* destination.qmp, { uri, timeout: "60 seconds" }))
      expect(error._tag).toBe("MigrationFailed")
      const failed = error as Migration.MigrationFailed
      expect(failed.side).toBe("destination")
      expect(["failed", "disconnected"]).toContain(failed.status)
      expect(failed.message).toContain("migration failed on the destination")
      // The source sent everything and stopped (postmigrate, or still finishing): it can be resumed.
      yield* source.execute("cont")
      expect((yield* source.execute("query-status")).status).toBe("running")
    }))
})
