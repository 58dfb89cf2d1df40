/**
 * A console's log file, written from a fiber of its own so that a slow or
 * failed disk never holds up the console's reader; memory stays bounded
 * whatever the disk does (`ConsoleSocket`'s `logFile` option).
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Mailbox from "effect/Mailbox"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { TempFilesError } from "../Errors.js"
import * as Files from "./files.js"

/** At most this many bytes wait for the log file; past it (a slow or failed disk) output is not logged, and counted. */
const LOG_BACKLOG_BYTES = 8 * 1024 * 1024
/** Waiting chunks are joined into writes of about this size. */
const LOG_WRITE_BYTES = 1024 * 1024

/** Consecutive chunks in groups of at most `max` bytes (a larger chunk alone). */
const groupsOf = (chunks: ReadonlyArray<Uint8Array>, max: number): Array<Array<Uint8Array>> => {
  const groups: Array<Array<Uint8Array>> = []
  let current: Array<Uint8Array> = []
  let size = 0
  for (const chunk of chunks) {
    if (current.length > 0 && size + chunk.length > max) {
      groups.push(current)
      current = []
      size = 0
    }
    current.push(chunk)
    size += chunk.length
  }
  if (current.length > 0) groups.push(current)
  return groups
}

/**
 * Writes console output to a file from a fiber of its own, so a slow disk
 * never holds up the reader. Memory stays bounded whatever the disk does: at
 * most `LOG_BACKLOG_BYTES` wait, and after a write fails nothing more is kept.
 * What could not be logged is reported once, with a count, when the console
 * closes.
 */
export const writer = (
  target: string | FileSystem.File,
  label: string
): Effect.Effect<{ readonly write: (chunk: Uint8Array) => void }, TempFilesError, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const name = typeof target === "string" ? target : "the console log"
    const file = typeof target === "string"
      ? yield* Files.createPrivate(target).pipe(
        Effect.mapError((cause) => new TempFilesError({ operation: "create console log", path: target, cause }))
      )
      : target
    const mailbox = yield* Mailbox.make<Uint8Array>()
    let backlog = 0
    let lost = 0
    let failure: string | undefined
    const writing = yield* Mailbox.toStream(mailbox).pipe(
      Stream.runForEachChunk((chunks) => {
        const bytes = Chunk.toReadonlyArray(chunks)
        const size = bytes.reduce((sum, b) => sum + b.length, 0)
        // Small chunks are joined for fewer writes, but never into copies over 1 MiB: a copy of the
        // whole backlog would double what waits.
        return Effect.forEach(groupsOf(bytes, LOG_WRITE_BYTES), (group) =>
          file.writeAll(group.length === 1 ? group[0]! : Buffer.concat(group)), { discard: true }).pipe(
          Effect.ensuring(Effect.sync(() => {
            backlog -= size
          }))
        )
      }),
      Effect.catchAll((error) =>
        Effect.gen(function*() {
          failure = String(error.message)
          // Nothing more will be written: drop what waits, count it, keep no more.
          const rest = yield* mailbox.clear
          lost += Chunk.reduce(rest, 0, (sum, b) => sum + b.length)
          backlog = 0
        })
      ),
      Effect.forkScoped
    )
    // Finalizers run in reverse: this flushes before the file is closed.
    yield* Effect.addFinalizer(() =>
      mailbox.end.pipe(
        Effect.zipRight(Fiber.join(writing)),
        Effect.timeout(Duration.seconds(10)),
        Effect.ignore,
        Effect.zipRight(Effect.suspend(() =>
          lost === 0 && failure === undefined ? Effect.void : Effect.logWarning(
            `${label}: ${lost} bytes of console output not written to ${name}${
              failure === undefined ? " (the disk could not keep up)" : ` (writing failed: ${failure})`
            }`
          )
        ))
      )
    )
    return {
      write: (chunk) => {
        if (failure !== undefined || backlog + chunk.length > LOG_BACKLOG_BYTES) {
          lost += chunk.length
          return
        }
        backlog += chunk.length
        mailbox.unsafeOffer(chunk)
      }
    }
  })
