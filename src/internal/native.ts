/**
 * The native helper (`native/unix_socket.c`, built by node-gyp at install):
 * SCM_RIGHTS sends and SO_PEERCRED, which Node cannot do on a unix socket.
 * Loaded once, on first use; a missing build is a value, not a throw.
 */
import * as Either from "effect/Either"
import { createRequire } from "node:module"
import * as NodeOs from "node:os"
import type { Duplex } from "node:stream"

/** The helper's functions; each returns `-errno` rather than throwing for an OS error. */
export interface NativeHelper {
  readonly sendWithFds: (socketFd: number, data: Uint8Array, fds: ReadonlyArray<number>) => number
  readonly peerCredentials: (socketFd: number) => readonly [pid: number, uid: number, gid: number] | number
}

/**
 * Where the helper may be, relative to this module in `src/internal` or
 * `dist/internal`: a local node-gyp build first, then the prebuilt binary the
 * package ships for this platform.
 */
const NATIVE_PATHS = [
  "../../build/Release/qemu_machine_native.node",
  `../../prebuilds/${process.platform}-${process.arch}/qemu_machine_native.node`
]

let native: Either.Either<NativeHelper, string> | undefined

/** The helper, or why it could not be loaded. */
export const load = (): Either.Either<NativeHelper, string> => {
  if (native !== undefined) return native
  const require = createRequire(import.meta.url)
  const failures: Array<string> = []
  for (const path of NATIVE_PATHS) {
    try {
      return native = Either.right(require(path) as NativeHelper)
    } catch (error) {
      failures.push(error instanceof Error ? error.message.split("\n")[0]! : String(error))
    }
  }
  return native = Either.left(failures.join("; "))
}

/** An errno number's name, e.g. `EPIPE`. */
export const errnoName = (errno: number): string =>
  Object.entries(NodeOs.constants.errno).find(([, value]) => value === errno)?.[0] ?? `errno ${errno}`

/** The descriptor of a unix-socket duplex, if it is one. */
export const unixSocketFd = (duplex: Duplex): number | undefined => {
  const handle = (duplex as { _handle?: { fd?: unknown; constructor?: { name?: string } } | null })._handle
  if (handle == null || handle.constructor?.name !== "Pipe") return undefined
  return typeof handle.fd === "number" && handle.fd >= 0 ? handle.fd : undefined
}
