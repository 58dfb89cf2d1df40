/**
 * A byte stream over a Node `Duplex` (unix socket, TCP socket, or the socket
 * pair end Node creates for an extra `'pipe'` stdio slot).
 *
 * Why not `@effect/platform`'s `Socket`: its `write` waits on a latch that
 * closes when the reader ends, so a write racing a disconnect can wait
 * forever, and its `'error'` listener goes away with the reader's scope, after
 * which a late ECONNRESET from QEMU crashes the process. Here the error
 * listener lives as long as the socket, writes fail fast once it is closed,
 * and the reader is a plain synchronous callback (no fiber per chunk).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Net from "node:net"
import type { Duplex } from "node:stream"
import * as Resource from "./resource.js"

/** How a transport's stream ended. */
export type TransportEnd =
  | { readonly _tag: "Eof" }
  | { readonly _tag: "Error"; readonly error: Error }
  | { readonly _tag: "Closed" }

/** A transport write failed because the stream is closed or broken. */
export class TransportClosed {
  readonly _tag = "TransportClosed"
  constructor(readonly error: Error | undefined) {}
}

/** A duplex byte stream, read by one callback and written by many fibers. */
export interface ByteTransport {
  readonly label: string
  /**
   * Starts reading; completes (never fails) when the stream ends. `onEnd`, if
   * given, is called synchronously from the socket's own callback as it ends,
   * before any other code can see the closed socket. Call once.
   */
  readonly run: (
    onChunk: (chunk: Uint8Array) => void,
    onEnd?: (end: TransportEnd) => void
  ) => Effect.Effect<TransportEnd>
  /**
   * Attaches the callbacks now (`onEnd` called once, as the stream ends) and
   * returns their detach, for an owner that detaches in a finalizer of its
   * own. Call once, and not together with `run` or `listen`.
   */
  readonly attach: (onChunk: (chunk: Uint8Array) => void, onEnd: (end: TransportEnd) => void) => () => void
  /**
   * `run` without a fiber: the callbacks are attached now, `onEnd` is called
   * as the stream ends, and the scope's end detaches them. For readers that
   * live as long as a scope (a QMP session, a console): a fiber that only
   * waits costs a fork at the launch and an interruption at the shutdown.
   * Call once, and not together with `run`.
   */
  readonly listen: (
    onChunk: (chunk: Uint8Array) => void,
    onEnd: (end: TransportEnd) => void
  ) => Effect.Effect<void, never, Scope.Scope>
  /** Writes bytes; fails at once if the stream is already closed. */
  readonly write: (data: string | Uint8Array) => Effect.Effect<void, TransportClosed>
  /** Writes without waiting for the flush; returns false if the stream is closed. */
  readonly unsafeWrite: (data: string | Uint8Array) => boolean
  /** Destroys the stream; the reader then ends with `Closed`. */
  readonly close: Effect.Effect<void>
  /** `close`, callable from a plain callback. */
  readonly unsafeClose: () => void
  /** True once the stream can no longer be written. */
  readonly isClosed: () => boolean
  /** The underlying socket, for what only Node can do (file descriptor passing). */
  readonly duplex: Duplex
}

const ignore = () => {}

/**
 * Wraps a connected duplex. The scope's finalizer destroys it; an `'error'`
 * listener stays attached for the duplex's whole life.
 */
export const fromDuplex = (duplex: Duplex, label: string): Effect.Effect<ByteTransport, never, Scope.Scope> =>
  Resource.acquireRelease(
    Effect.sync(() => {
      let closedByUs = false
      let lastError: Error | undefined
      duplex.on("error", (error) => {
        lastError = error
      })
      const isClosed = () => duplex.destroyed || !duplex.writable
      /** Attaches the reader's callbacks; `onEnded` once, as the stream ends. Returns the detach. */
      const attach = (onChunk: (chunk: Uint8Array) => void, onEnded: (end: TransportEnd) => void) => {
        let done = false
        const finish = (end: TransportEnd) => {
          if (done) return
          done = true
          onEnded(end)
        }
        const onEnd = () => finish({ _tag: "Eof" })
        const onError = (error: Error) => finish({ _tag: "Error", error })
        const onClose = () =>
          finish(
            closedByUs
              ? { _tag: "Closed" }
              : lastError !== undefined
              ? { _tag: "Error", error: lastError }
              : { _tag: "Eof" }
          )
        duplex.on("data", onChunk)
        duplex.on("end", onEnd)
        duplex.on("error", onError)
        duplex.on("close", onClose)
        // Sockets accepted with `pauseOnConnect` stay paused until resumed explicitly.
        duplex.resume()
        if (duplex.destroyed) onClose()
        return () => {
          duplex.off("data", onChunk)
          duplex.off("end", onEnd)
          duplex.off("error", onError)
          duplex.off("close", onClose)
        }
      }
      const unsafeClose = () => {
        closedByUs = true
        duplex.destroy()
      }
      const transport: ByteTransport = {
        label,
        duplex,
        isClosed,
        run: (onChunk, onEnded) =>
          Effect.async<TransportEnd>((resume) =>
            Effect.sync(
              attach(onChunk, (end) => {
                onEnded?.(end)
                resume(Effect.succeed(end))
              })
            )
          ),
        attach,
        listen: (onChunk, onEnded) =>
          Effect.flatMap(Effect.scope, (scope) => Scope.addFinalizer(scope, Effect.sync(attach(onChunk, onEnded)))),
        write: (data) =>
          Effect.async<void, TransportClosed>((resume) => {
            if (isClosed()) return resume(Effect.fail(new TransportClosed(lastError)))
            duplex.write(data, (error) => {
              resume(error ? Effect.fail(new TransportClosed(error)) : Effect.void)
            })
          }),
        unsafeWrite: (data) => {
          if (isClosed()) return false
          duplex.write(data, ignore)
          return true
        },
        close: Effect.sync(unsafeClose),
        unsafeClose
      }
      return transport
    }),
    (transport) => transport.close
  )

/** Why a connect or accept failed. */
export class ConnectFailed {
  readonly _tag = "ConnectFailed"
  constructor(readonly detail: string, readonly error?: unknown) {}
}

/** Connects to a unix path or a TCP address. */
export const connect = (
  options: Net.NetConnectOpts,
  label: string,
  timeout: Duration.DurationInput
): Effect.Effect<ByteTransport, ConnectFailed, Scope.Scope> =>
  Resource.acquireInterruptibly(
    Effect.async<Net.Socket, ConnectFailed>((resume) => {
      const socket = Net.createConnection(options)
      const onError = (error: Error) => {
        socket.destroy()
        resume(Effect.fail(new ConnectFailed(error.message, error)))
      }
      socket.once("error", onError)
      socket.once("connect", () => {
        socket.off("error", onError)
        resume(Effect.succeed(socket))
      })
      return Effect.sync(() => socket.destroy())
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new ConnectFailed(`no connection within ${Duration.format(timeout)}`)
      })
    ),
    (socket) => Effect.sync(() => socket.destroy())
  ).pipe(Effect.flatMap((socket) => fromDuplex(socket, label)))

/** A listening socket server that hands out accepted connections. */
export interface Listener {
  /** `unix:PATH` or `tcp:HOST:PORT`. */
  readonly label: string
  /** The bound TCP port (useful when 0 was asked), or undefined for unix sockets. */
  readonly port: number | undefined
  /**
   * Waits for the next connection that `accepts` (default: any). A refused one
   * is destroyed before a byte is read or written, and the wait goes on.
   */
  readonly accept: (
    timeout: Duration.DurationInput,
    accepts?: (socket: Net.Socket) => boolean
  ) => Effect.Effect<ByteTransport, ConnectFailed, Scope.Scope>
}

/** Options of `listen`. */
export interface ListenOptions {
  /** A unix socket only its owner can connect to (bound under umask 0177). Default false. */
  readonly ownerOnly?: boolean | undefined
}

/** Where to listen. */
export type ListenAddress = { readonly path: string } | { readonly host: string; readonly port: number }

/** How an address reads in labels and errors: `unix:PATH` or `tcp:HOST:PORT`. */
export const addressLabel = (address: ListenAddress): string =>
  "path" in address ? `unix:${address.path}` : `tcp:${address.host}:${address.port}`

/**
 * Listens on a unix path or a TCP address (`server=True` of QEMU's Python `QEMUMachine`). The
 * scope closes the server; a unix path is the caller's to remove.
 */
export const listen = (
  address: ListenAddress,
  options: ListenOptions = {}
): Effect.Effect<Listener, ConnectFailed, Scope.Scope> =>
  Effect.gen(function*() {
    // Accepted connections wait here until taken; a take that is interrupted leaves its socket queued.
    const accepted = yield* Queue.unbounded<Net.Socket>()
    const server = yield* Effect.acquireRelease(
      Effect.async<Net.Server, ConnectFailed>((resume) => {
        const server = Net.createServer({ pauseOnConnect: true }, (socket) => {
          socket.on("error", ignore)
          accepted.unsafeOffer(socket)
        })
        server.once("error", (error) => resume(Effect.fail(new ConnectFailed(error.message, error))))
        if ("path" in address) {
          // Node binds a unix socket synchronously inside listen(): the umask covers exactly that bind.
          const restore = options.ownerOnly === true ? setUmask(0o177) : undefined
          try {
            server.listen(address.path, () => resume(Effect.succeed(server)))
          } finally {
            if (restore !== undefined) setUmask(restore)
          }
        } else {
          server.listen({ host: address.host, port: address.port, exclusive: true }, () => resume(Effect.succeed(server)))
        }
      }),
      // Stop listening first, so nothing is queued after the queue is emptied.
      (server) =>
        Effect.sync(() => server.close()).pipe(
          Effect.zipRight(Queue.takeAll(accepted)),
          Effect.flatMap((sockets) => Effect.sync(() => {
            for (const socket of sockets) socket.destroy()
          }))
        )
    )
    server.on("error", ignore)
    const bound = server.address()
    const port = bound !== null && typeof bound === "object" ? bound.port : undefined
    // With port 0 the label names the port the kernel chose.
    const label = addressLabel("path" in address ? address : { host: address.host, port: port ?? address.port })
    const accept = (timeout: Duration.DurationInput, accepts: (socket: Net.Socket) => boolean = () => true) => {
      const nextAccepted: Effect.Effect<Net.Socket> = Effect.flatMap(Queue.take(accepted), (socket) => {
        if (accepts(socket)) return Effect.succeed(socket)
        socket.destroy()
        return nextAccepted
      })
      return Resource.acquireInterruptibly(
        nextAccepted.pipe(
          Effect.timeoutFail({
            duration: timeout,
            onTimeout: () => new ConnectFailed(`no connection on ${label} within ${Duration.format(timeout)}`)
          })
        ),
        (socket) => Effect.sync(() => socket.destroy())
      ).pipe(Effect.flatMap((socket) => fromDuplex(socket, label)))
    }
    return { label, port, accept }
  })

/** Sets the process umask, returning the previous one; undefined where it cannot be set (worker threads). */
const setUmask = (mask: number): number | undefined => {
  try {
    return process.umask(mask)
  } catch {
    return undefined
  }
}
