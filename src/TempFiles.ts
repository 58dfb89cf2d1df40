/**
 * A private temporary directory for one machine: sockets, logs, disk images.
 * Mode 0700, removed by its scope's finalizer unless asked to keep it.
 *
 * The directory is made and removed with synchronous calls: a handful of
 * system calls of microseconds each, where each thread-pool round trip costs
 * 0.1–0.6 ms on a small VM (Node's recursive removal takes six of them); see
 * docs/performance.md. Everything else goes through the `FileSystem` service.
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import { SocketPathTooLong, TempFilesError } from "./Errors.js"
import { withNodeDefaults } from "./internal/platform.js"
import * as Procfs from "./internal/procfs.js"

/**
 * The longest AF_UNIX socket path Linux accepts: `sun_path` is 108 bytes,
 * one of which is the terminating NUL.
 */
export const MAX_SOCKET_PATH_BYTES = 107

/** Options of a temporary directory. */
export interface TempFilesOptions {
  /** Where to create it. Default: the OS temp dir (`$TMPDIR` or `/tmp`). */
  readonly baseDir?: string | undefined
  /** Name prefix. Default `qemu-machine-`. */
  readonly prefix?: string | undefined
  /** Keep the directory when the scope closes (for post-mortem logs). Default false. */
  readonly keep?: boolean | undefined
}

/** A private temporary directory. */
export interface TempFilesService {
  /** The directory's absolute path. */
  readonly directory: string
  /** The path of a file in the directory (no I/O). */
  readonly file: (name: string) => string
  /** The path of a socket in `dir` (default the temp dir), checked against the AF_UNIX limit. */
  readonly socketPath: (name: string, dir?: string | undefined) => Effect.Effect<string, SocketPathTooLong>
  /** Writes a file in the directory with mode 0600 and returns its path. */
  readonly writeFile: (name: string, data: Uint8Array) => Effect.Effect<string, TempFilesError>
}

/** The temporary directory service. */
export class TempFiles extends Context.Tag("qemu-machine/TempFiles")<TempFiles, TempFilesService>() {}

/** Fails with `SocketPathTooLong` if `path` does not fit in `sockaddr_un`. */
export const checkSocketPath = (path: string): Effect.Effect<string, SocketPathTooLong> => {
  const length = Buffer.byteLength(path, "utf8")
  return length > MAX_SOCKET_PATH_BYTES
    ? Effect.fail(new SocketPathTooLong({ path, length, limit: MAX_SOCKET_PATH_BYTES }))
    : Effect.succeed(path)
}

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

/**
 * Removes directories with this prefix in `baseDir` whose owner process is
 * gone: what a SIGKILLed process could not clean up (its QEMU died with it,
 * through pdeathsig). A directory with no owner in its name (another tool's,
 * or one kept on purpose) or with a live owner is never touched. Runs at
 * most once a minute per base dir and process.
 */
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
      if (Procfs.isAlive(Number(pid)) && Procfs.startTime(Number(pid)) === started) continue
      const directory = path.join(baseDir, entry)
      if (yield* fs.remove(directory, { recursive: true }).pipe(Effect.isSuccess)) reaped.push(directory)
    }
    if (reaped.length > 0) yield* Effect.logDebug(`removed temp dirs of processes that are gone: ${reaped.join(", ")}`)
    return reaped
  })

const DEFAULT_PREFIX = "qemu-machine-"

/**
 * Removes a directory and what is in it. The usual content (a log, sockets)
 * is one level of files: one listing, an unlink each and the `rmdir` is half
 * of what Node's recursive `rmSync` does (it stats each entry and tries
 * `rmdir` first); anything deeper goes to `rmSync`.
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
 * Creates the directory (mode 0700: `mkdtemp`'s, which a umask can only
 * narrow). Its removal is registered on the scope before anything is put in
 * it, so nothing is left behind whatever happens. Its name carries its owner
 * (this process), so that if this process is killed before it can remove it,
 * a later `make` in the same base dir does (`reapStale`, in the background).
 * A directory to keep (`keep`) has no owner in its name: nobody reaps it.
 */
export const make = (
  options: TempFilesOptions = {}
): Effect.Effect<TempFilesService, TempFilesError, Scope.Scope | FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const baseDir = options.baseDir ?? NodeOs.tmpdir()
    const prefix = options.prefix ?? DEFAULT_PREFIX
    const directory = yield* Effect.acquireRelease(
      Effect.try({
        try: () => NodeFs.mkdtempSync(path.join(baseDir, options.keep === true ? prefix : `${prefix}${owner}`)),
        catch: (cause) => new TempFilesError({ operation: "create directory in", path: baseDir, cause })
      }),
      (directory) =>
        options.keep === true ? Effect.void : Effect.try({
          try: () => removeTree(directory),
          catch: (cause) => new TempFilesError({ operation: "remove", path: directory, cause })
        }).pipe(Effect.catchAll((error) => Effect.logWarning(error.message)))
    )
    // In the background, and not tied to this directory's scope: a short-lived machine must not cut it short.
    if (reapDue(baseDir)) yield* Effect.forkDaemon(reapStale(baseDir, prefix))
    const file = (name: string) => path.join(directory, name)
    return {
      directory,
      file,
      socketPath: (name, dir) => checkSocketPath(path.join(dir ?? directory, name)),
      writeFile: (name, data) =>
        fs.writeFile(file(name), data, { mode: 0o600 }).pipe(
          Effect.as(file(name)),
          Effect.mapError((cause) => new TempFilesError({ operation: "write", path: file(name), cause }))
        )
    } satisfies TempFilesService
  })

/** A `TempFiles` directory that lives as long as the layer (on the `FileSystem` provided, Node's otherwise). */
export const layer = (options?: TempFilesOptions): Layer.Layer<TempFiles, TempFilesError> =>
  Layer.scoped(TempFiles, withNodeDefaults(make(options)))
