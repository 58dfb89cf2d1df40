/**
 * The guest's serial console as a byte stream: always drained (QEMU never
 * blocks on a full socket), optionally logged to a file, readable as
 * streams, and scriptable with expect-style waits.
 *
 * Waits consume: `waitFor` searches the output not yet consumed by an
 * earlier wait, and moves past its match, so a sequence of waits neither
 * misses output that came early nor matches the same text twice.
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Duplex } from "node:stream"
import { ConsoleClosed, ConsoleFailure, ConsoleTimeout, TempFilesError } from "./Errors.js"
import * as Deadline from "./internal/deadline.js"
import { withNodeDefaults } from "./internal/platform.js"
import { TextBuffer } from "./internal/textBuffer.js"
import * as Timeout from "./internal/timeout.js"
import * as Broadcast from "./internal/broadcast.js"
import * as ConsoleLog from "./internal/consoleLog.js"
import * as Transport from "./internal/transport.js"
import * as Tracing from "./internal/tracing.js"

/** Options of a console. */
export interface ConsoleOptions {
  /** How many characters of unconsumed and recent output to keep. Default 1 MiB. */
  readonly bufferSize?: number | undefined
  /**
   * Write every byte received to this file: a path, created anew with mode
   * 0600 (never through a link or into a FIFO; a stale regular file of ours is
   * replaced), or a file already open for writing.
   */
  readonly logFile?: string | FileSystem.File | undefined
  /** Default timeout of `waitFor` and friends. Default 60 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** A name for logs and errors. */
  readonly label?: string | undefined
}

/** What a wait matched. */
export interface ConsoleMatch {
  /** The text that matched. */
  readonly match: string
  /** The consumed text before the match. */
  readonly before: string
  /** The capture groups, for a RegExp pattern. */
  readonly groups: ReadonlyArray<string | undefined>
}

/** Options of a wait. */
export interface WaitOptions {
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * Patterns that end the wait at once with `ConsoleFailure` when they show
   * before the pattern waited for (`Kernel panic`, `Login incorrect`).
   */
  readonly failOn?: ReadonlyArray<string | RegExp> | undefined
}

/** Errors a console wait can end in. */
export type WaitError = ConsoleTimeout | ConsoleClosed | ConsoleFailure

/** A guest serial console. */
export interface ConsoleSocketService {
  /** Raw output from subscription on; ends when the console closes. */
  readonly output: Stream.Stream<Uint8Array>
  /** Output as UTF-8 lines (without `\r\n`), from subscription on. */
  readonly lines: Stream.Stream<string>
  /** Sends bytes or text to the guest. */
  readonly write: (data: string | Uint8Array) => Effect.Effect<void, ConsoleClosed>
  /**
   * Waits until the unconsumed output matches `pattern`, then consumes up to
   * the end of the match. A string is searched in the new output as it comes;
   * a RegExp in all the unconsumed output at each chunk (about 1 ms a chunk
   * with 900 KiB unconsumed): `drain` stale output before a RegExp wait.
   */
  readonly waitFor: (
    pattern: string | RegExp,
    options?: WaitOptions
  ) => Effect.Effect<ConsoleMatch, WaitError>
  /** Sends `input` followed by `enter` (default `"\r"`), then waits for `pattern`. */
  readonly execAndWait: (
    input: string,
    pattern: string | RegExp,
    options?: WaitOptions & { readonly enter?: string | undefined }
  ) => Effect.Effect<ConsoleMatch, WaitError>
  /** Sends Enter every `interval` (default 1 s) until `pattern` shows. */
  readonly interruptUntil: (
    pattern: string | RegExp,
    options?: WaitOptions & { readonly interval?: Duration.DurationInput | undefined; readonly enter?: string | undefined }
  ) => Effect.Effect<ConsoleMatch, WaitError>
  /** The most recent output, consumed or not: about `bufferSize` characters (at most 8 KiB more). */
  readonly recent: Effect.Effect<string>
  /** Output not yet consumed by a wait, bounded like `recent`. */
  readonly unconsumed: Effect.Effect<string>
  /** Consumes (and returns) all output not yet consumed: what came before is stale for the next wait. */
  readonly drain: Effect.Effect<string>
  /** Bytes received so far. */
  readonly bytesReceived: Effect.Effect<number>
  /** True until closed. */
  readonly isOpen: Effect.Effect<boolean>
  /** Closes the socket; waiters fail with `ConsoleClosed` at once. Idempotent. */
  readonly close: Effect.Effect<void>
}

/** The guest console service. */
export class ConsoleSocket extends Context.Tag("qemu-machine/ConsoleSocket")<ConsoleSocket, ConsoleSocketService>() {}

const DEFAULT_BUFFER = 1024 * 1024
const DEFAULT_TIMEOUT = Duration.seconds(60)

const describe = (pattern: string | RegExp) => typeof pattern === "string" ? JSON.stringify(pattern) : String(pattern)

/** How much of what a look covered the next one searches again: a match may straddle the two. */
const overlapOf = (pattern: string | RegExp) => typeof pattern === "string" ? pattern.length - 1 : Infinity

/**
 * The first match of `pattern` in `text` at or after `from`. A string is
 * searched in the text from there only; a RegExp (whose match may reach
 * back any distance) in all of it, so each look at a large unconsumed
 * output costs a RegExp wait what that output is long.
 */
const search = (text: TextBuffer, pattern: string | RegExp, from: number) => {
  if (typeof pattern === "string") {
    const index = text.from(from).indexOf(pattern)
    return index < 0 ? undefined : { index: from + index, match: pattern, groups: [] as Array<string | undefined> }
  }
  const regexp = new RegExp(pattern.source, pattern.flags.replace(/[gy]/g, ""))
  const found = regexp.exec(text.toString())
  return found === null ? undefined : { index: found.index, match: found[0], groups: found.slice(1) }
}

/**
 * Runs a console over a transport. The scope closes it and flushes the log.
 *
 * @internal
 */
export const fromTransport = (
  transport: Transport.ByteTransport,
  options: ConsoleOptions = {}
): Effect.Effect<ConsoleSocketService, TempFilesError, Scope.Scope | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const bufferSize = options.bufferSize ?? DEFAULT_BUFFER
    const defaultTimeout = options.timeout ?? DEFAULT_TIMEOUT
    const label = options.label ?? transport.label
    const hub = yield* Broadcast.make<Uint8Array>(4096)
    const decoder = new TextDecoder("utf-8")
    const recent = new TextBuffer(bufferSize)
    const unconsumed = new TextBuffer(bufferSize)
    let bytes = 0
    let closed = false

    const log = options.logFile === undefined
      ? undefined
      : yield* ConsoleLog.writer(options.logFile, label)

    /** The waits in progress: each is told of every chunk and of the end, and wakes its fiber only to end. */
    const watchers = new Set<() => void>()
    const notify = () => {
      for (const watch of watchers) watch()
    }

    const onChunk = (chunk: Uint8Array) => {
      bytes += chunk.length
      // Node hands each read its own buffer, so it can be shared without a copy.
      log?.write(chunk)
      const text = decoder.decode(chunk, { stream: true })
      recent.append(text)
      unconsumed.append(text)
      hub.publish(chunk)
      // After the text is in the buffers: a wait told of this chunk finds it there.
      notify()
    }
    const markClosed = () => {
      if (closed) return
      closed = true
      hub.end()
      notify()
    }

    yield* transport.listen(onChunk, markClosed)
    yield* Effect.addFinalizer(() => Effect.sync(markClosed))

    const tail = () => recent.tail(512)

    /**
     * Searches the unconsumed text now, and again after each chunk, in the
     * reader's own callback: the waiting fiber is woken once, when the wait
     * can end, not for every chunk (a serial console arrives a few bytes at
     * a time). Only the fiber consumes, so a wait interrupted or timed out
     * takes nothing. A string is searched only past what earlier looks
     * covered, less its length, and without joining the text before that.
     */
    const waitFor = (
      pattern: string | RegExp,
      waitOptions?: WaitOptions
    ): Effect.Effect<ConsoleMatch, WaitError> => {
      const timeout = Duration.decode(waitOptions?.timeout ?? defaultTimeout)
      const failOn = waitOptions?.failOn ?? []
      const onTimeout = () =>
        new ConsoleTimeout({ pattern: describe(pattern), timeoutMillis: Duration.toMillis(timeout), tail: tail() })
      return Effect.clockWith((clock) => {
        const deadline = Deadline.onClock(timeout, clock)
        let searched = 0
        let droppedBefore = unconsumed.dropped
        /**
         * The match and the first fail-fast pattern before it, past what earlier looks covered (a fail-fast
         * pattern before that would have ended the wait then).
         */
        const scan = () => {
          const covered = searched - (unconsumed.dropped - droppedBefore)
          const from = (p: string | RegExp) => Math.max(0, covered - overlapOf(p))
          const found = search(unconsumed, pattern, from(pattern))
          // A fail-fast pattern counts only before what was waited for.
          const failed = failOn
            .map((bad) => ({ bad, hit: search(unconsumed, bad, from(bad)) }))
            .find(({ hit }) => hit !== undefined && (found === undefined || hit.index < found.index))
          return { found, failed }
        }
        const cover = () => {
          searched = unconsumed.length
          droppedBefore = unconsumed.dropped
        }
        /** The reader's question: could the wait end now? */
        const canEnd = () => {
          const { failed, found } = scan()
          if (found !== undefined || failed !== undefined || closed) return true
          cover()
          return false
        }
        /** The fiber's look: the wait's end, consuming what it ends on, or undefined to wait on. */
        const end = (): Exit.Exit<ConsoleMatch, WaitError> | undefined => {
          const { failed, found } = scan()
          const text = found !== undefined || failed !== undefined ? unconsumed.toString() : ""
          if (failed !== undefined) {
            const until = failed.hit!.index + failed.hit!.match.length
            unconsumed.dropFront(until)
            return Exit.fail(
              new ConsoleFailure({
                pattern: describe(pattern),
                failedOn: describe(failed.bad),
                match: failed.hit!.match,
                tail: text.slice(Math.max(0, until - 512), until)
              })
            )
          }
          if (found !== undefined) {
            unconsumed.dropFront(found.index + found.match.length)
            return Exit.succeed({ match: found.match, before: text.slice(0, found.index), groups: found.groups })
          }
          if (closed) return Exit.fail(new ConsoleClosed({ operation: `wait for ${describe(pattern)}`, detail: label, tail: tail() }))
          cover()
          return undefined
        }
        const woken = (wake: (exit: Exit.Exit<void>) => void) => {
          const watch = () => {
            if (!canEnd()) return
            watchers.delete(watch)
            wake(Exit.void)
          }
          watchers.add(watch)
          return () => void watchers.delete(watch)
        }
        const wait: Effect.Effect<ConsoleMatch, WaitError> = Effect.suspend(() =>
          end() ?? Effect.zipRight(Timeout.callbackWithin(woken, { duration: Deadline.remaining(deadline), onTimeout }), wait)
        )
        return wait
      }).pipe(
        Tracing.withSpan("ConsoleSocket.waitFor", { attributes: { "console.pattern": describe(pattern), "console.label": label } })
      )
    }

    const write = (data: string | Uint8Array): Effect.Effect<void, ConsoleClosed> =>
      Effect.mapError(
        transport.write(data),
        (e) =>
          new ConsoleClosed({
            operation: "write",
            detail: e.error?.message ?? `${label} is closed`,
            tail: tail()
          })
      )

    const output = hub.stream

    const service: ConsoleSocketService = {
      output,
      lines: output.pipe(
        Stream.decodeText(),
        Stream.splitLines
      ),
      write,
      waitFor,
      execAndWait: (input, pattern, execOptions) =>
        Effect.zipRight(write(`${input}${execOptions?.enter ?? "\r"}`), waitFor(pattern, execOptions)),
      interruptUntil: (pattern, interruptOptions) => {
        const enter = interruptOptions?.enter ?? "\r"
        const interval = interruptOptions?.interval ?? Duration.seconds(1)
        const poke = Effect.zipRight(Effect.ignore(write(enter)), Effect.sleep(interval)).pipe(Effect.forever)
        return Effect.raceFirst(waitFor(pattern, interruptOptions), poke)
      },
      recent: Effect.sync(() => recent.toString()),
      unconsumed: Effect.sync(() => unconsumed.toString()),
      drain: Effect.sync(() => {
        const text = unconsumed.toString()
        unconsumed.dropFront(text.length)
        return text
      }),
      bytesReceived: Effect.sync(() => bytes),
      isOpen: Effect.sync(() => !closed),
      close: Effect.zipRight(transport.close, Effect.sync(markClosed))
    }
    return service
  })

/** A console over a connected duplex (e.g. the socket pair end of `-chardev socket,fd=N`). */
export const make = (
  duplex: Duplex,
  options: ConsoleOptions = {}
): Effect.Effect<ConsoleSocketService, TempFilesError, Scope.Scope> =>
  Effect.flatMap(Transport.fromDuplex(duplex, options.label ?? "console"), (transport) =>
    fromTransport(transport, options)).pipe(withNodeDefaults)

/** Options of `connect`. */
export interface ConnectOptions extends ConsoleOptions {
  /** How long the connect may take. Default 10 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/** A console connected to a unix socket path (QEMU's `-chardev socket,path=...,server=on,wait=off`). */
export const connect = (
  path: string,
  options: ConnectOptions = {}
): Effect.Effect<ConsoleSocketService, TempFilesError | ConsoleClosed, Scope.Scope> =>
  Transport.connect({ path }, `unix:${path}`, options.connectTimeout ?? Duration.seconds(10)).pipe(
    Effect.mapError((e) => new ConsoleClosed({ operation: "connect", detail: `${path}: ${e.detail}`, tail: "" })),
    Effect.flatMap((transport) => fromTransport(transport, { label: `console unix:${path}`, ...options })),
    withNodeDefaults
  )

/** A `ConsoleSocket` connected to `path` for the layer's lifetime. */
export const layer = (
  path: string,
  options?: ConnectOptions
): Layer.Layer<ConsoleSocket, TempFilesError | ConsoleClosed> => Layer.scoped(ConsoleSocket, connect(path, options))
