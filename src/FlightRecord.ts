/**
 * What led to a machine's failure, carried by the failure itself: the last
 * QMP messages both ways and the events, with times; the console's tail;
 * QEMU's own output; the command line (secrets redacted). `render()` gives a
 * readable block, so a failed CI run explains itself without a rerun.
 *
 * ```ts
 * yield* vm.execute("device_del", { id: "nic0" }).pipe(
 *   Effect.tapError((error) => Console.error(error.flightRecord?.render() ?? error.message))
 * )
 * ```
 *
 * Every machine keeps one (`MachineConfig.flightRecorder`; on by default,
 * bounded: 64 messages, 2 KiB of console, 4 KiB of log), and the errors its
 * operations fail with carry a snapshot in `flightRecord`.
 *
 * @module
 */
import * as Schema from "effect/Schema"

/** How much a machine's flight recorder keeps (`MachineConfig.flightRecorder`). */
export interface FlightRecorderOptions {
  /** QMP messages kept. Default 64. */
  readonly messages?: number | undefined
  /** Characters of console output. Default 2048. */
  readonly consoleBytes?: number | undefined
  /** Bytes of QEMU's output. Default 4096. */
  readonly logBytes?: number | undefined
}

/** One QMP message as the recorder saw it. */
export class RecordedMessage extends Schema.Class<RecordedMessage>("RecordedMessage")({
  /** Milliseconds since the epoch. */
  at: Schema.Number,
  direction: Schema.Literal("send", "receive"),
  /** The message's JSON, cut to a few hundred characters. */
  text: Schema.String
}) {}

/** A machine's recent past, as of a failure. */
export class FlightRecord extends Schema.Class<FlightRecord>("FlightRecord")({
  machine: Schema.String,
  pid: Schema.NullOr(Schema.Number),
  /** The command line, secrets redacted. */
  command: Schema.Array(Schema.String),
  /** When the record was taken (ms since the epoch). */
  at: Schema.Number,
  /** The last QMP messages, oldest first (commands, replies, events). */
  qmp: Schema.Array(RecordedMessage),
  /** How many messages went by in all (the record keeps the last few). */
  qmpTotal: Schema.Number,
  consoleTail: Schema.String,
  logTail: Schema.String
}) {
  /** A readable block: header, QMP messages with times relative to the failure, console and log tails. */
  render(): string {
    const lines = [
      `--- flight record: ${this.machine}${this.pid === null ? "" : ` (pid ${this.pid})`}, ${new Date(this.at).toISOString()} ---`,
      `command: ${this.command.join(" ")}`,
      `QMP: last ${this.qmp.length} of ${this.qmpTotal} messages`
    ]
    for (const message of this.qmp) {
      const ago = ((message.at - this.at) / 1000).toFixed(3).padStart(9)
      lines.push(`  ${ago}s ${message.direction === "send" ? "->" : "<-"} ${message.text}`)
    }
    if (this.consoleTail !== "") lines.push("console (tail):", indent(this.consoleTail))
    if (this.logTail !== "") lines.push("QEMU output (tail):", indent(this.logTail))
    lines.push("--- end of flight record ---")
    return lines.join("\n")
  }
}

/** Lines prefixed, control characters (a guest's escape sequences) made visible. */
const indent = (text: string) =>
  text.replace(/\r\n/g, "\n").replace(/\n$/, "")
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
    .split("\n").map((line) => `  | ${line}`).join("\n")
