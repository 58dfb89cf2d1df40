/**
 * The private temp dir's life under `TempFiles` and the launch: made (mode
 * 0700, its owner in its name), removed when its scope closes unless kept,
 * and removable earlier: a shutdown removes it while QEMU exits, so that the
 * work is off the path between QEMU's exit and the shutdown's return.
 *
 * It is made and removed with synchronous calls: a handful of system calls,
 * where each thread-pool round trip costs 0.1–0.6 ms on a small VM whose
 * cores idle while QEMU works (Node's recursive removal alone takes six);
 * see docs/performance.md.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { TempFilesError } from "../Errors.js"
import * as Procfs from "./procfs.js"

/** Where and how to make one. */
export interface Options {
  readonly baseDir?: string | undefined
  readonly prefix?: string | undefined
  readonly keep?: boolean | undefined
}

/** A private directory. */
export interface PrivateDir {
  readonly directory: string
  /**
   * Removes it and everything in it now (once; the scope's end then has
   * nothing to do). A kept directory stays. A failure is logged, not raised.
   */
  readonly remove: Effect.Effect<void>
}

const DEFAULT_PREFIX = "qemu-machine-"

/**
 * This process's identity, written into its directories' names: pid and
 * start time (clock ticks since boot), which pid reuse cannot fake. In the
 * name, it costs no extra write, and reaping is one directory listing.
 */
const owner = `${process.pid}.${Procfs.startTime(process.pid) ?? "0"}-`
const OWNED = /^(\d+)\.(\d+)-/

const REAP_INTERVAL_MS = 60_000
const lastReap = new Map<string, number>()
const reapDue = (baseDir: string) => Date.now() - (lastReap.get(baseDir) ?? -Infinity) >= REAP_INTERVAL_MS

/** `TempFiles.reapStale`: removes this prefix's directories whose owner process is gone, at most once a minute. */
export const reapStale = (
  baseDir: string,
  prefix: string = DEFAULT_PREFIX
): Effect.Effect<ReadonlyArray<string>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    if (!reapDue(baseDir)) return []
    lastReap.set(baseDir, Date.now())
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const entries = yield* fs.readDirectory(baseDir).pipe(Effect.orElseSucceed(() => []))
    const reaped: Array<string> = []
    for (const entry of entries) {
      const owned = entry.startsWith(prefix) ? OWNED.exec(entry.slice(prefix.length)) : null
      if (owned === null) continue
      const [, pid, started] = owned
      if (Procfs.isSameAlive({ pid: Number(pid), startTime: started })) continue
      const directory = path.join(baseDir, entry)
      if (yield* fs.remove(directory, { recursive: true }).pipe(Effect.isSuccess)) reaped.push(directory)
    }
    if (reaped.length > 0) yield* Effect.logDebug(`removed temp dirs of processes that are gone: ${reaped.join(", ")}`)
    return reaped
  })

/**
 * Removes a directory and what is in it. The usual content (a log, sockets)
 * is one level of files: one listing, an unlink each and the `rmdir` is half
 * of what Node's recursive `rmSync` does (it stats each entry and tries
 * `rmdir` first); anything deeper goes to `rmSync`. Links are removed, never
 * followed.
 */
const removeTree = (directory: string): void => {
  for (const entry of NodeFs.readdirSync(directory, { withFileTypes: true })) {
    const entryPath = `${directory}/${entry.name}`
    if (entry.isDirectory()) NodeFs.rmSync(entryPath, { recursive: true, force: true })
    else NodeFs.unlinkSync(entryPath)
  }
  NodeFs.rmdirSync(directory)
}

/**
 * Makes the directory; its removal is registered on the scope before
 * anything is put in it. Starts a background reap of the base dir when one
 * is due (not tied to this scope: a short-lived machine must not cut it short).
 */
export const make = (
  options: Options
): Effect.Effect<PrivateDir, TempFilesError, Scope.Scope | FileSystem.FileSystem | Path.Path> =>
  Effect.flatMap(Effect.scope, (scope) => makeIn(options, scope))

/**
 * `make`, its removal added to `scope`: the launch's form, a few steps in
 * all (a launch's every Effect step costs most right after the process was
 * idle; docs/performance.md).
 */
export const makeIn = (
  options: Options,
  scope: Scope.Scope
): Effect.Effect<PrivateDir, TempFilesError, FileSystem.FileSystem | Path.Path> =>
  Effect.uninterruptible(Effect.suspend(() => {
    const baseDir = options.baseDir ?? NodeOs.tmpdir()
    const prefix = options.prefix ?? DEFAULT_PREFIX
    const keep = options.keep === true
    let directory: string
    try {
      directory = NodeFs.mkdtempSync(NodePath.join(baseDir, keep ? prefix : `${prefix}${owner}`))
    } catch (cause) {
      return Effect.fail(new TempFilesError({ operation: "create directory in", path: baseDir, cause }))
    }
    let removed = false
    const made: PrivateDir = {
      directory,
      remove: Effect.suspend(() => {
        if (keep || removed) return Effect.void
        removed = true
        return Effect.try({
          try: () => removeTree(directory),
          catch: (cause) => new TempFilesError({ operation: "remove", path: directory, cause })
        }).pipe(Effect.catchAll((error) => Effect.logWarning(error.message)))
      })
    }
    const registered = Effect.as(Scope.addFinalizer(scope, made.remove), made)
    return reapDue(baseDir) ? Effect.zipLeft(registered, Effect.forkDaemon(reapStale(baseDir, prefix))) : registered
  }))
