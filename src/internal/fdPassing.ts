/**
 * Passing file descriptors over a unix socket (SCM_RIGHTS), which Node
 * cannot do by itself: a ~100-line N-API helper (`native/unix_socket.c`, built
 * by node-gyp at install) does the one `sendmsg` call.
 *
 * The helper writes straight to the socket's descriptor, beside libuv. That
 * is safe only while libuv has nothing queued for the socket, so a send first
 * waits for Node's write queue to empty, then calls `sendmsg` in the same
 * tick (nothing else can queue in between), and hands any unsent remainder
 * back to Node's queue, behind which later writes line up in order.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import type { Duplex } from "node:stream"
import { FdPassingError } from "../Errors.js"
import * as Native from "./native.js"
import { TransportClosed } from "./transport.js"

/** A descriptor to pass: an open descriptor of this process, or a file to open (read-only unless `writable`). */
export type FdSource = number | { readonly path: string; readonly writable?: boolean | undefined }

/** Fails with `BadDescriptor` unless `fd` is open in this process. */
export const checkOpen = (fd: number): Effect.Effect<number, FdPassingError> => {
  const bad = (why: string) =>
    new FdPassingError({ reason: "BadDescriptor", detail: `descriptor ${fd} is not open: ${why}`, fd })
  return !Number.isInteger(fd) || fd < 0
    ? Effect.fail(bad("not a descriptor number"))
    : Effect.try({
      try: () => {
        NodeFs.fstatSync(fd)
        return fd
      },
      catch: (error) => bad(error instanceof Error ? error.message : String(error))
    })
}

/**
 * The descriptor of a source, open for the scope: a number is checked and
 * used as is (the caller still owns it); a path is opened and closed with the
 * scope.
 */
export const open = (source: FdSource): Effect.Effect<number, FdPassingError, Scope.Scope> =>
  typeof source === "number"
    ? checkOpen(source)
    : Effect.acquireRelease(
      Effect.try({
        try: () => NodeFs.openSync(source.path, source.writable === true ? "r+" : "r"),
        catch: (error) =>
          new FdPassingError({
            reason: "Open",
            detail: `cannot open ${source.path}: ${error instanceof Error ? error.message : String(error)}`,
            path: source.path
          })
      }),
      (fd) => Effect.sync(() => NodeFs.closeSync(fd))
    )

/** How long a send waits for Node's queue to empty, or for room in the socket buffer. */
const SEND_WAIT = Duration.seconds(10)
/** QEMU reads at most 16 descriptors per message (TCP_MAX_FDS); the helper takes no more. */
const MAX_FDS = 16
const POLL = Duration.millis(1)

/**
 * Sends `data` with `fds` attached to its first byte on a unix-socket duplex.
 * The caller keeps ownership of `fds` (the kernel gives the peer copies).
 */
export const send = (
  duplex: Duplex,
  data: string | Uint8Array,
  fds: ReadonlyArray<number>
): Effect.Effect<void, FdPassingError | TransportClosed> =>
  Effect.suspend(() => {
    const helper = Native.load()
    if (Either.isLeft(helper)) {
      return Effect.fail(
        new FdPassingError({
          reason: "Unavailable",
          detail: `the native helper is not available (see \`npx qemu-machine doctor\`; \`npm rebuild qemu-machine\` builds it): ${helper.left}`
        })
      )
    }
    if (fds.length === 0 || fds.length > MAX_FDS) {
      return Effect.fail(
        new FdPassingError({ reason: "Send", detail: `one message carries 1 to ${MAX_FDS} descriptors, not ${fds.length}` })
      )
    }
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data
    /** One try, in one tick: `false` when it must wait for Node's queue or for room in the socket. */
    const attempt = Effect.suspend((): Effect.Effect<boolean, FdPassingError | TransportClosed> => {
      if (duplex.destroyed || !duplex.writable) return Effect.fail(new TransportClosed(undefined))
      const socketFd = Native.unixSocketFd(duplex)
      if (socketFd === undefined) {
        return Effect.fail(
          new FdPassingError({
            reason: "Unsupported",
            detail: "descriptors can only be passed over a unix socket (socket pair or path monitor), not TCP"
          })
        )
      }
      // Wait until libuv has nothing queued: our bytes must not overtake earlier writes.
      if (duplex.writableLength > 0) return Effect.succeed(false)
      const sent = helper.right.sendWithFds(socketFd, bytes, fds)
      if (sent === -NodeOs.constants.errno.EAGAIN) return Effect.succeed(false)
      if (sent === -NodeOs.constants.errno.EPIPE || sent === -NodeOs.constants.errno.ECONNRESET) {
        return Effect.fail(new TransportClosed(new Error(Native.errnoName(-sent))))
      }
      if (sent < 0) {
        const fd = fds.length === 1 ? { fd: fds[0]! } : {}
        return Effect.fail(
          new FdPassingError({
            reason: sent === -NodeOs.constants.errno.EBADF ? "BadDescriptor" : "Send",
            detail: `sendmsg failed: ${Native.errnoName(-sent)}`,
            ...fd
          })
        )
      }
      if (sent < bytes.length) duplex.write(bytes.subarray(sent))
      return Effect.succeed(true)
    })
    return attempt.pipe(
      Effect.repeat({ schedule: Schedule.spaced(POLL), until: (sent) => sent }),
      Effect.timeoutFail({
        duration: SEND_WAIT,
        onTimeout: () =>
          new FdPassingError({ reason: "Send", detail: `the socket stayed busy for ${Duration.format(SEND_WAIT)}` })
      }),
      Effect.asVoid
    )
  })
