/**
 * qemu-machine: launch QEMU virtual machines and drive them over QMP, as
 * Effect services.
 *
 * ```ts
 * import { Machine } from "qemu-machine"
 * ```
 *
 * @module
 */

/** The guest serial console. */
export * as ConsoleSocket from "./ConsoleSocket.js"
/** The guest's display and keyboard: screenshots, typed keys. */
export * as Display from "./Display.js"
/** What led to a machine's failure, carried by the failure. */
export * as FlightRecord from "./FlightRecord.js"
/** Every error the library reports. */
export * as Errors from "./Errors.js"
/** The QEMU guest agent (qemu-ga), typed from its schema. */
export * as GuestAgent from "./GuestAgent.js"
/** Block jobs run to their end: statuses, completion, typed failure, progress. */
export * as Jobs from "./Jobs.js"
/** A launched QEMU, as a scoped resource. */
export * as Machine from "./Machine.js"
/** Machine configuration and the pure argv builder. */
export * as MachineConfig from "./MachineConfig.js"
/** Live migration between two machines, followed on both sides. */
export * as Migration from "./Migration.js"
/** Typed QMP from QEMU's QAPI schema: command and event types, run-time decoding, the drift check. */
export * as Qapi from "./Qapi.js"
/** Spawning QEMU processes. */
export * as QemuProcess from "./QemuProcess.js"
/** A QMP session. */
export * as QmpClient from "./QmpClient.js"
/** QMP wire schemas, framing and event matching. */
export * as QmpProtocol from "./QmpProtocol.js"
/** A shell on a serial console: commands with exit codes and output, login, interrupt. */
export * as ShellSession from "./ShellSession.js"
/** Private temporary directories. */
export * as TempFiles from "./TempFiles.js"
/** User-mode networking: host port forwards and the ports they got. */
export * as UserNetwork from "./UserNetwork.js"
