/**
 * What a machine is: binary, arguments, monitor and console wiring,
 * timeouts. `buildArgs` turns a config and the launch's runtime facts
 * (descriptor numbers, socket paths) into QEMU's argv, with no I/O.
 *
 * @module
 */
import type * as Duration from "effect/Duration"
import type { FlightRecorderOptions } from "./FlightRecord.js"
import type { QmpClientOptions } from "./QmpClient.js"
import { nicOption, type UserNetworkConfig } from "./UserNetwork.js"

/** How QEMU's QMP monitor is reached. */
export type MonitorTransport =
  /** A socket pair inherited by QEMU as a descriptor (`-chardev socket,id=mon,fd=N`). The default. */
  | { readonly _tag: "SocketPair" }
  /** We listen on a unix path and QEMU connects (the default of QEMU's Python `QEMUMachine`). `path` defaults into the temp dir. */
  | { readonly _tag: "UnixPath"; readonly path?: string | undefined }
  /** We listen on TCP and QEMU connects. `host` defaults to 127.0.0.1; port 0 picks a free one. */
  | { readonly _tag: "Tcp"; readonly host?: string | undefined; readonly port?: number | undefined }

/** The guest serial console, as `set_console` of QEMU's Python `QEMUMachine`. */
export interface ConsoleConfig {
  /** A device type such as `isa-serial`; default `-serial chardev:console` (the machine's default device). */
  readonly deviceType?: string | undefined
  /** Which console: index N puts N `-serial null` devices before it. Default 0. */
  readonly index?: number | undefined
  /** `"SocketPair"` (default, inherited descriptor) or `"UnixPath"` (QEMU listens, `server=on,wait=off`). */
  readonly transport?: "SocketPair" | "UnixPath" | undefined
  /** Characters of output kept in memory. Default 1 MiB. */
  readonly bufferSize?: number | undefined
  /** Also append the console's bytes to this file; `true` means `<name>-console.log` in the log dir. */
  readonly logFile?: string | boolean | undefined
}

/**
 * A channel to the QEMU guest agent (qemu-ga) in the guest, always a socket
 * pair. The guest must run the agent on the matching device.
 */
export interface GuestAgentConfig {
  /**
   * `"virtio-serial"` (default): a virtio serial port named
   * `org.qemu.guest_agent.0`, where distribution packages of qemu-ga look.
   * `"isa-serial"`: an ISA serial port, `/dev/ttyS<index>` in the guest (no
   * virtio driver needed; run `qemu-ga -p /dev/ttyS1 -m isa-serial`).
   */
  readonly device?: "virtio-serial" | "isa-serial" | undefined
  /** The ISA serial port's index (`ttyS<index>`). Default 1. */
  readonly index?: number | undefined
  /** Default timeout of each request, a first sync included. Default 60 s. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * A descriptor handed to QEMU with `-add-fd` (`add_fd` of QEMU's Python `QEMUMachine`): either an
 * open descriptor of this process, or a path the launch opens (read-only
 * unless `writable`) and closes when the machine ends. QEMU inherits it at a
 * number the launch chooses and names in `-add-fd fd=N`.
 */
export type AddFd = AddFdOptions & (
  | {
    /** An open descriptor of this process (it stays yours). */
    readonly fd: number
  }
  | {
    /** A file to open and pass. */
    readonly path: string
    /** Open it read-write instead of read-only. */
    readonly writable?: boolean | undefined
  }
)

/** The `-add-fd` options besides the descriptor. */
export interface AddFdOptions {
  /** The fd set (`set=`), used as `/dev/fdset/<fdset>`. */
  readonly fdset: number
  /** A free-form note shown by `query-fdsets`. */
  readonly opaque?: string | undefined
  /** Extra `-add-fd` options, appended verbatim. */
  readonly opts?: string | undefined
}

/** A machine's configuration. Every field is optional. */
export interface MachineConfig {
  /** The QEMU binary. Default `qemu-system-x86_64`. */
  readonly binary?: string | undefined
  /** Extra arguments after the base ones (`args` of QEMU's Python `QEMUMachine`/`add_args`). */
  readonly args?: ReadonlyArray<string> | undefined
  /** Prefix before the binary, e.g. `["taskset", "-c", "1"]`. */
  readonly wrapper?: ReadonlyArray<string> | undefined
  /** Prefix of socket and log file names. Default `qemu-<pid>-<n>`. */
  readonly name?: string | undefined
  /** Where the private temp dir is created. Default the OS temp dir. */
  readonly baseTempDir?: string | undefined
  /** Where path sockets go. Default the temp dir. */
  readonly sockDir?: string | undefined
  /** Where `<name>.log` goes and stays. Default the temp dir (removed with it). */
  readonly logDir?: string | undefined
  /** `-machine` value (`set_machine` of QEMU's Python `QEMUMachine`). */
  readonly machineType?: string | undefined
  /**
   * `-vga` value: `std` gives the machine a display for screenshots (QEMU
   * still runs with `-display none`). Default `none`, as QEMU's Python
   * `QEMUMachine`.
   */
  readonly vga?: string | undefined
  /**
   * `-accel` value, e.g. `tcg` or `kvm`; `auto` is `kvm` if `Machine.kvmRuns`
   * says a guest runs under it (asked once per binary and process, up to 5 s),
   * else `tcg`. Default: QEMU's default (TCG here).
   */
  readonly accel?: string | undefined
  /**
   * The QMP session's options (timeouts, run-time decoding, the schema drift
   * check, a traffic hook; see `QmpClient.QmpClientOptions`), or `false` for
   * no QMP monitor (`set_qmp_monitor(False)` of the Python `QEMUMachine`).
   * Default `{}`.
   */
  readonly qmp?: false | QmpClientOptions | undefined
  /** How QMP is reached. Default a socket pair. */
  readonly monitor?: MonitorTransport | undefined
  /** Add `-monitor null` (`add_monitor_null` of QEMU's Python `QEMUMachine`). */
  readonly monitorNull?: boolean | undefined
  /** A serial console. Default none. */
  readonly console?: ConsoleConfig | undefined
  /** A guest agent channel (`vm.guestAgent`). Default none. */
  readonly guestAgent?: GuestAgentConfig | undefined
  /** Descriptors passed with `-add-fd`. */
  readonly addFds?: ReadonlyArray<AddFd> | undefined
  /**
   * A user-mode network card with host port forwards (`-nic user,hostfwd=...`,
   * loopback only unless a forward says otherwise); `vm.forwardedPort` reads
   * the host port a forward got. Default none (add `-nic none` to `args` for
   * no network at all).
   */
  readonly userNetwork?: UserNetworkConfig | undefined
  /**
   * The flight recorder: the errors of this machine's operations carry the
   * last QMP messages, console and log tails (`FlightRecord`). Default on;
   * `false` turns it off.
   */
  readonly flightRecorder?: false | FlightRecorderOptions | undefined
  /** Greeting plus negotiation must finish within this. Default 30 s. */
  readonly launchTimeout?: Duration.DurationInput | undefined
  /** Soft shutdown timeout when the scope closes. Default 30 s. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** Keep the temp dir after shutdown. Default false. */
  readonly keepTempDir?: boolean | undefined
  /**
   * Make QEMU die with SIGKILL if this process dies, via util-linux
   * `setpriv --pdeathsig KILL` (when it is installed). Default true.
   */
  readonly dieWithParent?: boolean | undefined
  /** Extra environment variables for QEMU. */
  readonly env?: Readonly<Record<string, string>> | undefined
}

/** The first inherited descriptor number. */
export const FIRST_EXTRA_FD = 3

/** Where QEMU finds a chardev: an inherited descriptor, a unix path, or a TCP address. */
export type ChardevEndpoint =
  | { readonly _tag: "Fd"; readonly fd: number }
  | { readonly _tag: "UnixPath"; readonly path: string }
  | { readonly _tag: "Tcp"; readonly host: string; readonly port: number }

/** Facts known only at launch: where the monitor and console are. */
export interface LaunchRuntime {
  /** QEMU connects to a path or address (we listen). */
  readonly monitor?: ChardevEndpoint | undefined
  /** QEMU listens on a path or address (`server=on,wait=off`; we connect). */
  readonly console?: ChardevEndpoint | undefined
  /** The guest agent's channel. */
  readonly guestAgent?: ChardevEndpoint | undefined
  /** The descriptor number QEMU sees for each `addFds` entry, in order (a `path` entry needs one). */
  readonly addFdNumbers?: ReadonlyArray<number> | undefined
}

/** A `-chardev socket` value; `server` when QEMU is the one listening. */
const chardevSocket = (id: string, endpoint: ChardevEndpoint, server: boolean): string => {
  const where = endpoint._tag === "Fd"
    ? `fd=${endpoint.fd}`
    : endpoint._tag === "UnixPath"
    ? `path=${escapeOptionValue(endpoint.path)}`
    : `host=${escapeOptionValue(endpoint.host)},port=${endpoint.port}`
  return `socket,id=${id},${where}${server && endpoint._tag !== "Fd" ? ",server=on,wait=off" : ""}`
}

/**
 * A value for a QEMU `key=value,...` option: QEMU reads a single comma as the
 * start of the next option and a doubled one as a literal comma.
 */
export const escapeOptionValue = (value: string): string => value.replace(/,/g, ",,")

/** The base arguments every machine gets: no display, no VGA (as QEMU's Python `QEMUMachine`). */
export const BASE_ARGS: ReadonlyArray<string> = ["-display", "none", "-vga", "none"]

/**
 * QEMU's arguments (without wrapper and binary), pure: the Python original's
 * `_base_args` followed by the user's arguments.
 */
export const buildArgs = (config: MachineConfig, runtime: LaunchRuntime): ReadonlyArray<string> => {
  const args: Array<string> = config.vga === undefined ? [...BASE_ARGS] : ["-display", "none", "-vga", config.vga]
  const monitor = runtime.monitor
  if (config.qmp !== false && monitor !== undefined) {
    args.push("-chardev", chardevSocket("mon", monitor, false), "-mon", "chardev=mon,mode=control")
  }
  if (config.monitorNull === true) args.push("-monitor", "null")
  if (config.machineType !== undefined) args.push("-machine", config.machineType)
  if (config.accel !== undefined) args.push("-accel", config.accel)
  const console = config.console
  if (console !== undefined) {
    for (let i = 0; i < (console.index ?? 0); i++) args.push("-serial", "null")
    const where = runtime.console
    if (where !== undefined) {
      args.push("-chardev", chardevSocket("console", where, true))
      if (console.deviceType === undefined) args.push("-serial", "chardev:console")
      else args.push("-device", `${console.deviceType},chardev=console`)
    }
  }
  const agent = config.guestAgent
  if (agent !== undefined && runtime.guestAgent !== undefined) {
    args.push("-chardev", chardevSocket("qga0", runtime.guestAgent, false))
    if (agent.device === "isa-serial") args.push("-device", `isa-serial,chardev=qga0,index=${agent.index ?? 1}`)
    else {
      args.push(
        "-device", "virtio-serial-pci,id=qga-serial",
        "-device", "virtserialport,bus=qga-serial.0,chardev=qga0,name=org.qemu.guest_agent.0"
      )
    }
  }
  if (config.userNetwork !== undefined) args.push("-nic", nicOption(config.userNetwork))
  const numbers = runtime.addFdNumbers ?? []
  ;(config.addFds ?? []).forEach((entry, i) => {
    // A path is opened only at launch, which supplies its number; without one it shows as `fd=?`.
    const fd = numbers[i] ?? ("fd" in entry ? entry.fd : "?")
    const options = [`fd=${fd}`, `set=${entry.fdset}`]
    if (entry.opaque !== undefined) options.push(`opaque=${escapeOptionValue(entry.opaque)}`)
    if (entry.opts !== undefined && entry.opts !== "") options.push(entry.opts)
    args.push("-add-fd", options.join(","))
  })
  args.push(...(config.args ?? []))
  return args
}

/** The whole argv: wrapper, binary, arguments. */
export const buildCommand = (
  config: MachineConfig,
  runtime: LaunchRuntime,
  wrapper: ReadonlyArray<string> = config.wrapper ?? []
): ReadonlyArray<string> => [...wrapper, config.binary ?? DEFAULT_BINARY, ...buildArgs(config, runtime)]

/** The default binary. */
export const DEFAULT_BINARY = "qemu-system-x86_64"

/** How `Machine.attach` reaches a QEMU this process did not start. */
export interface AttachConfig {
  /** Its QMP monitor: `-qmp unix:PATH,server=on,wait=off` or `-qmp tcp:HOST:PORT,server=on,wait=off`. */
  readonly monitor: { readonly path: string } | { readonly host: string; readonly port: number }
  /** A name for logs and spans. Default the monitor's address. */
  readonly name?: string | undefined
  /** The QMP session's options (timeouts, decoding, schema check, traffic hook). */
  readonly qmp?: QmpClientOptions | undefined
  /** A serial console QEMU listens on (`-chardev socket,path=PATH,server=on,wait=off`). */
  readonly console?: { readonly path: string } | undefined
  /** A guest agent socket QEMU listens on (`-chardev socket,path=PATH,server=on,wait=off,id=qga0` + its port). */
  readonly guestAgent?: { readonly path: string } | undefined
  /**
   * What the scope's end does: `detach` (default) closes this process's
   * connections and leaves QEMU running; `shutdown` shuts it down like a
   * launched machine's scope does.
   */
  readonly onClose?: "detach" | "shutdown" | undefined
  /** Connecting and the greeting must finish within this. Default 30 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Soft shutdown timeout (the scope's end with `onClose: "shutdown"`). Default 30 s. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** The flight recorder, as a launched machine's (no QEMU log: its output is not ours to read). Default on. */
  readonly flightRecorder?: false | FlightRecorderOptions | undefined
}
