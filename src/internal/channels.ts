/**
 * The launch's byte channels to QEMU (the QMP monitor, the serial console),
 * one value each: where QEMU finds it (`endpoint`, written into argv by
 * `buildArgs`) and how the host side opens once QEMU runs (`open`).
 *
 * - a socket pair: QEMU inherits one end as a descriptor; ours is in the
 *   child's streams;
 * - a path or TCP address we listen on (the monitor): QEMU connects, and a
 *   connection that cannot be traced to QEMU's process tree is refused;
 * - a path QEMU listens on (the console, `server=on,wait=off`): we connect.
 *
 * Nothing is ever created over an existing path, and only paths the launch
 * created are removed at the end.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { Duplex } from "node:stream"
import type { SocketPathTooLong } from "../Errors.js"
import { type ChardevEndpoint, type ConsoleConfig, FIRST_EXTRA_FD, type MonitorTransport } from "../MachineConfig.js"
import type * as QemuProcess from "../QemuProcess.js"
import * as TempFiles from "../TempFiles.js"
import * as Files from "./files.js"
import * as Peer from "./peer.js"
import * as Transport from "./transport.js"

/** A channel to QEMU. */
export interface Channel {
  readonly endpoint: ChardevEndpoint
  /** Opens the host side; call once, after spawn. The scope closes it. */
  readonly open: (
    child: QemuProcess.ChildHandle,
    timeout: Duration.DurationInput
  ) => Effect.Effect<Transport.ByteTransport, ChannelFailed, Scope.Scope>
}

/** A channel could not be set up before spawn: the launch fails with reason `Setup`. */
export class ChannelSetupFailed extends Data.TaggedError("ChannelSetupFailed")<{
  readonly detail: string
  readonly cause?: unknown
}> {}

/** A channel could not be opened after spawn: the handshake fails. */
export class ChannelFailed extends Data.TaggedError("ChannelFailed")<{
  readonly detail: string
  readonly cause?: unknown
}> {}

/** What preparing a channel needs from the launch. */
export interface ChannelContext {
  /** The machine's scope: listeners and path removals live there. */
  readonly scope: Scope.Scope
  /** The machine's private temp dir: sockets go there unless `sockDir` says otherwise. */
  readonly directory: string
  readonly name: string
  readonly sockDir: string | undefined
  /** Reserves the next inherited descriptor for a new socket pair; returns its slot. */
  readonly addSocketPair: () => number
}



/** The path of one of the machine's sockets, checked against the AF_UNIX limit. */
const socketPath = (context: ChannelContext, role: string) =>
  TempFiles.checkSocketPath(`${context.sockDir ?? context.directory}/${context.name}-${role}.sock`)

const socketPair = (context: ChannelContext, label: string): Channel => {
  const slot = context.addSocketPair()
  return {
    endpoint: { _tag: "Fd", fd: FIRST_EXTRA_FD + slot },
    open: (child) => Transport.fromDuplex(child.streams[slot] as Duplex, label)
  }
}

/** Refuses a path something already occupies (its removal is registered only once the path is ours). */
const claimPath = (path: string): Effect.Effect<void, ChannelSetupFailed, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const problem = yield* Files.occupied(path)
    if (problem !== undefined) {
      return yield* new ChannelSetupFailed({ detail: `${path} ${problem}; it is not ours to replace` })
    }
    // libuv reports a missing directory as EACCES: say what it is.
    const directory = path.slice(0, path.lastIndexOf("/")) || "/"
    if (!(yield* fs.exists(directory).pipe(Effect.orElseSucceed(() => false)))) {
      return yield* new ChannelSetupFailed({ detail: `${path}: the directory ${directory} does not exist` })
    }
  })

const removeAtEnd = (context: ChannelContext, path: string) =>
  Effect.flatMap(FileSystem.FileSystem, (fs) => Scope.addFinalizer(context.scope, fs.remove(path).pipe(Effect.ignore)))

/** Accepts QEMU's connection on a listener, refusing (and logging) any other process's. */
const acceptFromQemu = (listener: Transport.Listener) =>
(child: QemuProcess.ChildHandle, timeout: Duration.DurationInput) =>
  Effect.suspend(() => {
    const refused: Array<string> = []
    return listener.accept(timeout, (socket) => {
      const check = Peer.fromProcessTree(socket, child.pid)
      if (!check.accepted) refused.push(check.detail)
      return check.accepted
    }).pipe(
      Effect.ensuring(Effect.forEach(
        refused,
        (detail) => Effect.logWarning(`${listener.label}: refused a connection that is not QEMU's: ${detail}`),
        { discard: true }
      )),
      Effect.mapError((e) => new ChannelFailed({ detail: e.detail, cause: e.error }))
    )
  })

const listenOn = (context: ChannelContext, address: Transport.ListenAddress, label: string) =>
  Transport.listen(address, { ownerOnly: true }).pipe(
    Scope.extend(context.scope),
    Effect.mapError((e) => new ChannelSetupFailed({ detail: `cannot listen on ${label}: ${e.detail}`, cause: e.error }))
  )

/** The QMP monitor's channel. */
export const monitor = (
  context: ChannelContext,
  transport: MonitorTransport
): Effect.Effect<Channel, ChannelSetupFailed | SocketPathTooLong, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    switch (transport._tag) {
      case "SocketPair":
        return socketPair(context, `${context.name} QMP`)
      case "UnixPath": {
        const path = yield* (transport.path !== undefined
          ? TempFiles.checkSocketPath(transport.path)
          : socketPath(context, "monitor"))
        yield* claimPath(path)
        const listener = yield* listenOn(context, { path }, path)
        yield* removeAtEnd(context, path)
        return { endpoint: { _tag: "UnixPath", path }, open: acceptFromQemu(listener) }
      }
      case "Tcp": {
        const host = transport.host ?? "127.0.0.1"
        const listener = yield* listenOn(context, { host, port: transport.port ?? 0 }, `${host}:${transport.port ?? 0}`)
        return { endpoint: { _tag: "Tcp", host, port: listener.port! }, open: acceptFromQemu(listener) }
      }
    }
  })

/** The guest agent's channel: a socket pair. */
export const guestAgent = (context: ChannelContext): Channel => socketPair(context, `${context.name} guest agent`)

/** The serial console's channel. */
export const console = (
  context: ChannelContext,
  config: ConsoleConfig
): Effect.Effect<Channel, ChannelSetupFailed | SocketPathTooLong, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (config.transport !== "UnixPath") return socketPair(context, `${context.name} console`)
    const path = yield* socketPath(context, "console")
    // QEMU unlinks whatever is at its listening path before binding: check first.
    yield* claimPath(path)
    yield* removeAtEnd(context, path)
    return {
      endpoint: { _tag: "UnixPath", path },
      open: (_child, timeout) =>
        Transport.connect({ path }, `unix:${path}`, timeout).pipe(
          // QEMU creates its listening socket during start-up; we may be early.
          Effect.retry({
            schedule: Schedule.spaced("10 millis"),
            while: (e) => e.error !== undefined && ["ENOENT", "ECONNREFUSED"].includes(String((e.error as { code?: unknown }).code))
          }),
          Effect.mapError((e) => new ChannelFailed({ detail: `${path}: ${e.detail}`, cause: e.error }))
        )
    }
  })
