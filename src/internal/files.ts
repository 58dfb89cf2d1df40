/**
 * Files the launch creates in directories it does not own (a caller's
 * `logDir`, `sockDir`): created exclusively, so a link or a FIFO planted at
 * the name is never written through, opened, or removed; and read back in a
 * bounded way.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"

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
 * Creates `path` for writing, mode 0600, exclusively (`O_CREAT|O_EXCL`: a
 * symbolic link at the name, even a dangling one, is never followed, and a
 * FIFO is never opened). A regular file of ours with no other link, left by an
 * earlier run, is removed and created anew; anything else at the name is
 * refused. The scope closes the file.
 */
export const createPrivate = (
  path: string
): Effect.Effect<FileSystem.File, PathRefused, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const create = Effect.either(fs.open(path, { flag: "wx", mode: 0o600 }))
    const first = yield* create
    if (first._tag === "Right") return first.right
    if (!isAlreadyExists(first.left)) {
      return yield* new PathRefused({ path, detail: describe(first.left), cause: first.left })
    }
    const problem = yield* staleFileProblem(path)
    if (problem !== undefined) return yield* new PathRefused({ path, detail: problem })
    yield* fs.remove(path).pipe(Effect.mapError((cause) => new PathRefused({ path, detail: describe(cause), cause })))
    const second = yield* create
    if (second._tag === "Right") return second.right
    return yield* new PathRefused({
      path,
      detail: isAlreadyExists(second.left) ? "was created again by someone else meanwhile" : describe(second.left),
      cause: second.left
    })
  })

/** Why an existing file may not be replaced, or `undefined` if it is a plain file of ours. */
const staleFileProblem = (path: string): Effect.Effect<string | undefined, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const link = yield* fs.readLink(path).pipe(Effect.option)
    if (Option.isSome(link)) return `already exists and is a symbolic link (to ${link.value}); refusing to follow it`
    const info = yield* fs.stat(path).pipe(Effect.either)
    if (info._tag === "Left") return `already exists and cannot be inspected: ${describe(info.left)}`
    const { nlink, type, uid } = info.right
    if (type !== "File") return `already exists and is a ${type.toLowerCase()}, not a regular file`
    const me = process.getuid?.()
    if (Option.isSome(uid) && me !== undefined && uid.value !== me) {
      return `already exists and belongs to uid ${uid.value}`
    }
    if (Option.isSome(nlink) && nlink.value > 1) return "already exists and has other hard links"
    return undefined
  })

/** The last `maxBytes` of a file as text (empty if it cannot be read). */
export const readTail = (path: string, maxBytes: number): Effect.Effect<string, never, FileSystem.FileSystem> =>
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
