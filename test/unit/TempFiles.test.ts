/**
 * The private temp dir on its own: made 0700 with its owner in the name,
 * removed with everything in it (nested directories, links that point out of
 * it, never followed), kept when asked, and a directory removed behind its
 * back reported as a warning, not a failure. QEMU's log opened exclusively.
 */
import { describe, expect, it } from "@effect/vitest"
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Exit, Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Files from "../../src/internal/files.js"
import * as Procfs from "../../src/internal/procfs.js"
import { withNodeDefaults } from "../../src/internal/platform.js"
import * as TempFiles from "../../src/TempFiles.js"
import { captureWarnings, makeBaseDir } from "../helpers.js"

/** Makes a temp dir in its own scope; returns it and that scope's closing. */
const open = (options: TempFiles.TempFilesOptions) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const temp = yield* TempFiles.make(options).pipe(Scope.extend(scope), withNodeDefaults)
    return { temp, close: Scope.close(scope, Exit.void) }
  })

describe("TempFiles", () => {
  it.effect("is private, names its owner, and takes everything in it when its scope closes", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("tempfiles")
      const outside = NodePath.join(base, "outside.txt")
      NodeFs.writeFileSync(outside, "keep me")
      const { close, temp } = yield* open({ baseDir: base })
      expect(NodeFs.statSync(temp.directory).mode & 0o777).toBe(0o700)
      expect(NodePath.basename(temp.directory)).toMatch(new RegExp(`^qemu-machine-${process.pid}\\.\\d+-`))
      const written = yield* temp.writeFile("disk.img", new Uint8Array([1, 2, 3]))
      expect(NodeFs.statSync(written).mode & 0o777).toBe(0o600)
      // What a user may put there: a nested tree, and links pointing out of the directory.
      NodeFs.mkdirSync(NodePath.join(temp.directory, "nested", "deeper"), { recursive: true })
      NodeFs.writeFileSync(NodePath.join(temp.directory, "nested", "deeper", "file"), "x")
      NodeFs.symlinkSync(outside, NodePath.join(temp.directory, "link-to-file"))
      NodeFs.symlinkSync(base, NodePath.join(temp.directory, "nested", "link-to-dir"))
      yield* close
      expect(NodeFs.existsSync(temp.directory)).toBe(false)
      expect(NodeFs.readFileSync(outside, "utf8")).toBe("keep me")
      expect(NodeFs.readdirSync(base)).toEqual(["outside.txt"])
    }))

  it.effect("keep: the directory stays, with no owner in its name (nothing reaps it)", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("tempfiles-keep")
      const { close, temp } = yield* open({ baseDir: base, keep: true })
      yield* close
      expect(NodeFs.existsSync(temp.directory)).toBe(true)
      expect(NodePath.basename(temp.directory)).not.toMatch(/^qemu-machine-\d+\.\d+-/)
    }))

  it.effect("a directory removed behind its back: the scope still closes, with one warning", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("tempfiles-gone")
      // Finalizers log with what was current when they were added: capture around both.
      const { value: temp, warnings } = yield* captureWarnings(Effect.gen(function*() {
        const { close, temp } = yield* open({ baseDir: base })
        NodeFs.rmSync(temp.directory, { recursive: true })
        yield* close
        return temp
      }))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain(`remove ${temp.directory} failed`)
    }))

  it.effect("reapStale: takes the dirs whose owner is gone or whose pid another process holds now, leaves a live owner's", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("tempfiles-reap")
      const started = Procfs.startTime(process.pid)!
      // A process that has come and gone: its pid and start time name nobody now.
      const gone = ChildProcess.spawnSync("true").pid
      const goneStarted = "1"
      const dirs = {
        ours: `qemu-machine-${process.pid}.${started}-live`,
        dead: `qemu-machine-${gone}.${goneStarted}-dead`,
        // This process's pid with another start time: an owner that exited and whose pid was reused.
        reused: `qemu-machine-${process.pid}.${Number(started) + 1}-reused`,
        unowned: "qemu-machine-kept",
        otherPrefix: `other-${gone}.${goneStarted}-x`
      }
      for (const dir of Object.values(dirs)) NodeFs.mkdirSync(NodePath.join(base, dir))
      NodeFs.writeFileSync(NodePath.join(base, dirs.dead, "q.log"), "left by a killed run")
      const reaped = yield* withNodeDefaults(TempFiles.reapStale(base))
      expect([...reaped].sort()).toEqual([NodePath.join(base, dirs.dead), NodePath.join(base, dirs.reused)].sort())
      expect(NodeFs.readdirSync(base).sort()).toEqual([dirs.otherPrefix, dirs.ours, dirs.unowned].sort())
    }))

  it.effect("a base dir that does not exist: a TempFilesError naming it", () =>
    Effect.gen(function*() {
      const base = NodePath.join(makeBaseDir("tempfiles-missing"), "not-there")
      const error = yield* Effect.flip(open({ baseDir: base }))
      expect(error).toMatchObject({ _tag: "TempFilesError", operation: "create directory in", path: base })
    }))
})

describe("QEMU's log file", () => {
  /** Opens `path` as the launch does, into the test's scope. */
  const openLog = (path: string) =>
    Effect.flatMap(Effect.scope, (scope) =>
      withNodeDefaults(Effect.flatMap(FileSystem.FileSystem, (fs) => Files.openLog(path, scope, fs))))

  it.scoped("is created 0600 and exclusively: a link at the name is refused, a stale file of ours replaced", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("logfile")
      const fresh = NodePath.join(base, "fresh.log")
      const log = yield* openLog(fresh)
      NodeFs.writeSync(log.fd, "hello")
      expect(yield* log.readTail(3)).toBe("[... 2 earlier bytes not shown ...]\nllo")
      expect(NodeFs.statSync(fresh).mode & 0o777).toBe(0o600)

      const target = NodePath.join(base, "target")
      NodeFs.writeFileSync(target, "not yours")
      const linked = NodePath.join(base, "linked.log")
      NodeFs.symlinkSync(target, linked)
      const refused = yield* Effect.flip(openLog(linked))
      expect(refused.detail).toContain("symbolic link")
      expect(NodeFs.readFileSync(target, "utf8")).toBe("not yours")

      const fifo = NodePath.join(base, "fifo.log")
      NodeFs.mkdirSync(fifo)
      expect((yield* Effect.flip(openLog(fifo))).detail).toContain("is a directory")

      const stale = NodePath.join(base, "stale.log")
      NodeFs.writeFileSync(stale, "an earlier run")
      const replaced = yield* openLog(stale)
      expect(yield* replaced.readTail(100)).toBe("")
      expect(NodeFs.fstatSync(replaced.fd).size).toBe(0)
    }))

  it.effect("its scope's end closes it; its tail is still read through the descriptor once the name is gone", () =>
    Effect.gen(function*() {
      const path = NodePath.join(makeBaseDir("logfile-close"), "q.log")
      const scope = yield* Scope.make()
      const log = yield* Scope.extend(openLog(path), scope)
      NodeFs.writeSync(log.fd, "the last words")
      NodeFs.unlinkSync(path)
      expect(yield* log.readTail(5)).toBe("[... 9 earlier bytes not shown ...]\nwords")
      /** What the log's descriptor number refers to now ("" once closed; the number may be reused). */
      const target = () => {
        try {
          return NodeFs.readlinkSync(`/proc/self/fd/${log.fd}`)
        } catch {
          return ""
        }
      }
      expect(target()).toBe(`${path} (deleted)`)
      // Closed by the time the scope's end returns, not on Node's thread pool a moment later: nothing of the
      // machine's may outlive it. The pool is held up meanwhile (opens of FIFOs no one writes), so a close
      // sent there could not have happened yet.
      const fifos = Array.from({ length: 16 }, (_, i) => NodePath.join(NodePath.dirname(path), `hold-${i}`))
      ChildProcess.execFileSync("mkfifo", fifos)
      for (const fifo of fifos) NodeFs.open(fifo, "r", (error, fd) => error === null && NodeFs.closeSync(fd))
      yield* Scope.close(scope, Exit.void)
      const closedInTime = target() !== `${path} (deleted)`
      for (const fifo of fifos) NodeFs.closeSync(NodeFs.openSync(fifo, "w"))
      expect(closedInTime).toBe(true)
    }))
})
