/**
 * User-mode networking (slirp) with host port forwards, and the host port a
 * forward really got.
 *
 * ```ts
 * const vm = yield* Machine.launch({
 *   userNetwork: { forwards: [{ guestPort: 22 }] }   // host port 0: the kernel picks a free one
 * })
 * const port = yield* vm.forwardedPort(22)            // e.g. 37311, on 127.0.0.1
 * ```
 *
 * QEMU 7.2 has no QMP command that lists forwards: the host port is read
 * from HMP's `info usernet`. A connection to it succeeds as soon as QEMU
 * listens, whether or not anything in the guest does (QEMU accepts, then
 * closes if the guest does not answer): wait for the service itself, e.g.
 * for its banner.
 *
 * @module
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as QmpClient from "./QmpClient.js"
import * as Tracing from "./internal/tracing.js"

/** One `hostfwd`: connections to the host port reach the guest port. */
export interface PortForward {
  readonly guestPort: number
  /** Default 0: any free port (read it with `forwardedPort`). */
  readonly hostPort?: number | undefined
  /** Default `127.0.0.1`: only this machine can connect. `0.0.0.0` opens it to the network. */
  readonly hostAddress?: string | undefined
  /** Default `tcp`. */
  readonly protocol?: "tcp" | "udp" | undefined
  /** Default the guest's DHCP address (`10.0.2.15`). */
  readonly guestAddress?: string | undefined
}

/** A user-mode network card (`-nic user,...`). */
export interface UserNetworkConfig {
  /** The NIC model, e.g. `virtio-net-pci`. Default QEMU's (e1000 on pc and q35). */
  readonly model?: string | undefined
  readonly forwards?: ReadonlyArray<PortForward> | undefined
  /** Extra `-nic` options, appended verbatim (e.g. `restrict=on`). */
  readonly opts?: string | undefined
}

/** The `-nic` value for a config. */
export const nicOption = (config: UserNetworkConfig): string =>
  [
    "user",
    ...(config.model === undefined ? [] : [`model=${config.model}`]),
    ...(config.forwards ?? []).map((f) =>
      `hostfwd=${f.protocol ?? "tcp"}:${f.hostAddress ?? "127.0.0.1"}:${f.hostPort ?? 0}-${f.guestAddress ?? ""}:${f.guestPort}`
    ),
    ...(config.opts === undefined || config.opts === "" ? [] : [config.opts])
  ].join(",")

/** A forward as `info usernet` shows it. */
export interface ActiveForward {
  readonly protocol: "tcp" | "udp"
  readonly hostAddress: string
  readonly hostPort: number
  readonly guestAddress: string
  readonly guestPort: number
}

/**
 * The host forwards in `info usernet` output, e.g.
 * `  TCP[HOST_FORWARD]  13       127.0.0.1 37311       10.0.2.15    22     0     0`.
 */
export const parseUsernet = (text: string): ReadonlyArray<ActiveForward> =>
  [...text.matchAll(/^\s*(TCP|UDP)\[HOST_FORWARD\]\s+\S+\s+(\S+)\s+(\d+)\s+(\S+)\s+(\d+)/gm)].map((m) => ({
    protocol: m[1] === "TCP" ? "tcp" : "udp",
    hostAddress: m[2]!,
    hostPort: Number(m[3]),
    guestAddress: m[4]!,
    guestPort: Number(m[5])
  }))

/** No forward to that guest port is active. */
export class PortForwardNotFound extends Schema.TaggedError<PortForwardNotFound>()("PortForwardNotFound", {
  guestPort: Schema.Number,
  protocol: Schema.String,
  /** What `info usernet` listed. */
  usernet: Schema.String
}) {
  override get message(): string {
    return `no ${this.protocol} host forward to guest port ${this.guestPort} (add one with userNetwork.forwards): ${
      JSON.stringify(this.usernet.slice(0, 512))
    }`
  }
}

/** Every active host forward of the machine behind `qmp`. */
export const forwards = (qmp: QmpClient.QmpClientService): Effect.Effect<ReadonlyArray<ActiveForward>, QmpClient.CommandError> =>
  Effect.map(qmp.hmp("info usernet"), parseUsernet)

/** The host port forwarded to `guestPort` (the first, if several). */
export const forwardedPort = (
  qmp: QmpClient.QmpClientService,
  guestPort: number,
  options: { readonly protocol?: "tcp" | "udp" | undefined } = {}
): Effect.Effect<number, QmpClient.CommandError | PortForwardNotFound> =>
  Effect.gen(function*() {
    const protocol = options.protocol ?? "tcp"
    const usernet = yield* qmp.hmp("info usernet")
    const found = parseUsernet(usernet).find((f) => f.guestPort === guestPort && f.protocol === protocol)
    if (found === undefined) return yield* new PortForwardNotFound({ guestPort, protocol, usernet })
    return found.hostPort
  }).pipe(Tracing.withSpan("UserNetwork.forwardedPort", { attributes: { "net.guest_port": guestPort } }))
