/**
 * A private temporary directory for one machine: sockets, logs, disk images.
 * Mode 0700, removed by its scope's finalizer unless asked to keep it.
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
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

/** The file in each directory that names the process owning it (pid and start time). */
const OWNER_FILE = ".owner"

/** This process's identity for `OWNER_FILE`: pid reuse cannot fake the start time. */
const ownerRecord = `${process.pid} ${Procfs.startTime(process.pid) ?? "?"}\n`

const REAP_INTERVAL_MS = 60_000
const lastReap = new Map<string, number>()

/**
 * Removes directories with this prefix in `baseDir` whose owner process is
 * gone: what a SIGKILLed process could not clean up (its QEMU died with it,
 * through pdeathsig). A directory with no owner record (another tool's, or
 * one being created this instant) or a live owner is never touched. Runs at
 * most once a minute per base dir and process.
 */
export const reapStale = (
  baseDir: string,
  prefix: string = DEFAULT_PREFIX
): Effect.Effect<ReadonlyArray<string>, never, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const now = Date.now()
    if (now - (lastReap.get(baseDir) ?? -Infinity) < REAP_INTERVAL_MS) return []
    lastReap.set(baseDir, now)
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const entries = yield* fs.readDirectory(baseDir).pipe(Effect.orElseSucceed(() => []))
    const reaped: Array<string> = []
    for (const entry of entries) {
      if (!entry.startsWith(prefix)) continue
      const directory = path.join(baseDir, entry)
      const record = yield* fs.readFileString(path.join(directory, OWNER_FILE)).pipe(Effect.option)
      if (Option.isNone(record)) continue
      const [pid, started] = record.value.trim().split(" ")
      if (pid === undefined || !/^\d+$/.test(pid)) continue
      if (Procfs.isAlive(Number(pid)) && Procfs.startTime(Number(pid)) === started) continue
      const removed = yield* fs.remove(directory, { recursive: true }).pipe(Effect.isSuccess)
      if (removed) reaped.push(directory)
    }
    if (reaped.length > 0) yield* Effect.logDebug(`removed temp dirs of processes that are gone: ${reaped.join(", ")}`)
    return reaped
  })

const DEFAULT_PREFIX = "qemu-machine-"

/**
 * Creates the directory (mode 0700). Its removal is registered on the scope
 * before anything is put in it, so nothing is left behind whatever happens.
 * It records its owner (this process), so that if this process is killed
 * before it can remove it, a later `make` in the same base dir does
 * (`reapStale`, in the background).
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
      fs.makeTempDirectory({ directory: baseDir, prefix }).pipe(
        Effect.mapError((cause) => new TempFilesError({ operation: "create directory in", path: baseDir, cause }))
      ),
      (directory) =>
        options.keep === true
          // Kept on purpose: no longer anyone's to reap.
          ? fs.remove(path.join(directory, OWNER_FILE)).pipe(Effect.ignore)
          : fs.remove(directory, { recursive: true }).pipe(
            Effect.catchAll((cause) =>
              Effect.logWarning(new TempFilesError({ operation: "remove", path: directory, cause }).message)
            )
          )
    )
    // mkdtemp already uses 0700; say so explicitly rather than trust the umask.
    yield* fs.chmod(directory, 0o700).pipe(
      Effect.mapError((cause) => new TempFilesError({ operation: "chmod", path: directory, cause }))
    )
    yield* fs.writeFileString(path.join(directory, OWNER_FILE), ownerRecord, { mode: 0o600 }).pipe(
      Effect.mapError((cause) => new TempFilesError({ operation: "write", path: path.join(directory, OWNER_FILE), cause }))
    )
    // In the background, and not tied to this directory's scope: a short-lived machine must not cut it short.
    yield* Effect.forkDaemon(reapStale(baseDir, prefix))
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
