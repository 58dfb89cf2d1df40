/**
 * Files the launch creates in directories it does not own (a caller's
 * `logDir`, `sockDir`): created exclusively, so a link or a FIFO planted at
 * the name is never written through, opened, or removed; and read back in a
 * bounded way.
 *
 * QEMU's log is opened and closed with synchronous calls (`openLog`): each
 * is one system call of a few microseconds, where a thread-pool round trip
 * costs 0.1–0.6 ms on a small VM whose cores sit idle while QEMU starts
 * (docs/performance.md). Nothing here reads or writes file contents
 * synchronously.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"

/** Why a path could not be used; `detail` reads well after the path. */
export class PathRefused extends Data.TaggedError("PathRefused")<{
  readonly path: string
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `${this.path}: ${this.detail}`
  }
}

const describe = (error: unknown): string =>
  error !== null && typeof error === "object" && "message" in error ? String(error.message) : String(error)

const isAlreadyExists = (error: unknown): boolean =>
  error !== null && typeof error === "object" && "reason" in error && error.reason === "AlreadyExists"

/**
 * Why nothing should be created at `path`: it exists (a link, even a dangling
 * one, counts). `undefined` when the name is free.
 */
export const occupied = (path: string): Effect.Effect<string | undefined, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const link = yield* fs.readLink(path).pipe(Effect.option)
    if (Option.isSome(link)) return `already exists (a symbolic link to ${link.value})`
    const info = yield* fs.stat(path).pipe(Effect.option)
    if (Option.isSome(info)) return `already exists (a ${info.value.type.toLowerCase()})`
    return undefined
  })

/**
 * The exclusive-creation policy, over any way of creating and removing,
 * from the outcome of a first `create`: it must fail when something is at
 * the name (`alreadyExists` tells that failure apart). A plain file of ours
 * with no other link, left by an earlier run, is removed and created anew;
 * anything else is refused.
 */
const createExclusively = <A, E, R>(
  path: string,
  first: Either.Either<A, E>,
  create: Effect.Effect<A, E, R>,
  alreadyExists: (error: E) => boolean,
  remove: Effect.Effect<void, unknown, R>
): Effect.Effect<A, PathRefused, R> =>
  Effect.gen(function*() {
    if (first._tag === "Right") return first.right
    if (!alreadyExists(first.left)) return yield* new PathRefused({ path, detail: describe(first.left), cause: first.left })
    const problem = staleFileProblem(path)
    if (problem !== undefined) return yield* new PathRefused({ path, detail: problem })
    yield* remove.pipe(Effect.mapError((cause) => new PathRefused({ path, detail: describe(cause), cause })))
    return yield* create.pipe(Effect.mapError((cause) =>
      new PathRefused({
        path,
        detail: alreadyExists(cause) ? "was created again by someone else meanwhile" : describe(cause),
        cause
      })
    ))
  })

/**
 * Creates `path` for writing, mode 0600, exclusively (`O_CREAT|O_EXCL`: a
 * symbolic link at the name, even a dangling one, is never followed, and a
 * FIFO is never opened). A regular file of ours with no other link, left by an
 * earlier run, is removed and created anew; anything else at the name is
 * refused. The scope closes the file.
 */
export const createPrivate = (
  path: string
): Effect.Effect<FileSystem.File, PathRefused, FileSystem.FileSystem | Scope.Scope> =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => {
    const create = fs.open(path, { flag: "wx", mode: 0o600 })
    return Effect.flatMap(
      Effect.either(create),
      (first) => createExclusively(path, first, create, isAlreadyExists, fs.remove(path))
    )
  })

/**
 * Why an existing file may not be replaced, or `undefined` if it is a plain
 * file of ours with no other link. One `lstat`: a link is never followed.
 */
const staleFileProblem = (path: string): string | undefined => {
  let info: NodeFs.Stats
  try {
    info = NodeFs.lstatSync(path)
  } catch (error) {
    return `already exists and cannot be inspected: ${describe(error)}`
  }
  if (info.isSymbolicLink()) {
    let target = "?"
    try {
      target = NodeFs.readlinkSync(path)
    } catch {
      // Gone or unreadable meanwhile: the refusal stands.
    }
    return `already exists and is a symbolic link (to ${target}); refusing to follow it`
  }
  if (!info.isFile()) return `already exists and is a ${typeName(info)}, not a regular file`
  const me = process.getuid?.()
  if (me !== undefined && info.uid !== me) return `already exists and belongs to uid ${info.uid}`
  if (info.nlink > 1) return "already exists and has other hard links"
  return undefined
}

const typeName = (info: NodeFs.Stats): string =>
  info.isDirectory()
    ? "directory"
    : info.isFIFO()
    ? "fifo"
    : info.isSocket()
    ? "socket"
    : info.isCharacterDevice()
    ? "character device"
    : info.isBlockDevice()
    ? "block device"
    : "special file"

/** QEMU's log, as the launch holds it: the descriptor QEMU inherits and its end. */
export interface LogFile {
  readonly fd: number
  /**
   * Its last `maxBytes` as text ("" if empty or unreadable), read through the
   * open descriptor (`/proc/self/fd`): it works after the name is gone, as
   * it is once a shutdown has removed the temp dir while QEMU exits.
   */
  readonly readTail: (maxBytes: number) => Effect.Effect<string>
}

const LOG_FLAGS = NodeFs.constants.O_WRONLY | NodeFs.constants.O_CREAT | NodeFs.constants.O_EXCL

/**
 * `createPrivate` for QEMU's log, with synchronous calls: the same exclusive
 * creation and the same policy for a file left at the name. Its close is
 * added to `scope`; its content is read through `fs`. A name that is free
 * (nearly always: it is in a new temp dir) costs one `open` and no other
 * step; only a name already taken goes through the policy.
 */
export const openLog = (
  path: string,
  scope: Scope.Scope,
  fs: FileSystem.FileSystem
): Effect.Effect<LogFile, PathRefused> =>
  Effect.uninterruptible(Effect.suspend(() => {
    const open = () => NodeFs.openSync(path, LOG_FLAGS, 0o600)
    const first = Either.try({ try: open, catch: (error) => error })
    const opened = Either.isRight(first) ? Effect.succeed(first.right) : createExclusively(
      path,
      first,
      Effect.try({ try: open, catch: (error) => error }),
      (error) => (error as { code?: unknown }).code === "EEXIST",
      Effect.try({ try: () => NodeFs.unlinkSync(path), catch: (error) => error })
    )
    return Effect.flatMap(opened, (fd) =>
      Effect.as(
        // Closed before the scope's end returns, though the close frees the unlinked inode (0.2–0.4 ms here):
        // closed on the thread pool without waiting, a descriptor was still open after the scope (the soak saw it).
        Scope.addFinalizer(scope, Effect.ignore(Effect.try(() => NodeFs.closeSync(fd)))),
        {
          fd,
          readTail: (maxBytes) =>
            Effect.suspend(() =>
              // Most machines write nothing to it: the size spares opening and reading it.
              sizeOf(fd) === 0
                ? Effect.succeed("")
                : readTail(`/proc/self/fd/${fd}`, maxBytes).pipe(Effect.provideService(FileSystem.FileSystem, fs))
            )
        } satisfies LogFile
      ))
  }))

const sizeOf = (fd: number): number => {
  try {
    return NodeFs.fstatSync(fd).size
  } catch {
    return 0
  }
}

/** The last `maxBytes` of a file as text (empty if it cannot be read). */
const readTail = (path: string, maxBytes: number): Effect.Effect<string, never, FileSystem.FileSystem> =>
  Effect.scoped(Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const file = yield* fs.open(path, { flag: "r" })
    const size = Number((yield* file.stat).size)
    const start = Math.max(0, size - maxBytes)
    yield* file.seek(FileSystem.Size(start), "start")
    const bytes = yield* file.readAlloc(FileSystem.Size(size - start))
    const text = Option.match(bytes, { onNone: () => "", onSome: (b) => new TextDecoder().decode(b) })
    return start > 0 ? `[... ${start} earlier bytes not shown ...]\n${text}` : text
  })).pipe(Effect.orElseSucceed(() => ""))
