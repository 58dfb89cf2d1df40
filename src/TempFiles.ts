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
import { SocketPathTooLong, TempFilesError } from "./Errors.js"
import { withNodeDefaults } from "./internal/platform.js"
import * as PrivateDir from "./internal/privateDir.js"

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
 * Removes directories with this prefix in `baseDir` whose owner process is
 * gone: what a SIGKILLed process could not clean up (its QEMU died with it,
 * through pdeathsig). A directory with no owner in its name (another tool's,
 * or one kept on purpose) or with a live owner is never touched. Runs at
 * most once a minute per base dir and process.
 */
export const reapStale: (
  baseDir: string,
  prefix?: string
) => Effect.Effect<ReadonlyArray<string>, never, FileSystem.FileSystem | Path.Path> = PrivateDir.reapStale

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
    const { directory } = yield* PrivateDir.make(options)
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
