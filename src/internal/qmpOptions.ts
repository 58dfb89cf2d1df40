/**
 * The options of a QMP session, in a module of their own: `QmpClient`
 * exports them, and the protocol engine (`qmpSession.ts`) reads the same
 * object, by the same names and defaults.
 */
import type * as Duration from "effect/Duration"
import type * as Qapi from "../Qapi.js"

/** Options of a QMP session. */
export interface QmpClientOptions {
  /** How long to wait for the greeting and the `qmp_capabilities` reply. Default 30 s. */
  readonly greetingTimeout?: Duration.DurationInput | undefined
  /** Default per-command timeout. Default: none (a dead peer is still detected by EOF). */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Ask for out-of-band execution if the server offers it. Default false. */
  readonly oob?: boolean | undefined
  /** Cap on one incoming message; past it the session fails. Default 10 MiB. */
  readonly maxMessageBytes?: number | undefined
  /** How many events the cache behind `getEvents`/`eventsWait` keeps (oldest dropped). Default 10,000. */
  readonly eventHistorySize?: number | undefined
  /** How many undelivered events one slow subscriber may lag behind (oldest dropped). Default 10,000. */
  readonly eventBufferSize?: number | undefined
  /** Called with every message sent and received, as its JSON value (a traffic log); a throw is logged, not fatal. */
  readonly onTraffic?: ((direction: "send" | "receive", message: unknown) => void) | undefined
  /** Decode typed commands and events waited for with the generated QAPI Schemas. Default false: typed, unchecked. */
  readonly decode?: boolean | undefined
  /**
   * Compare the server's QAPI schema with the generated one after the
   * handshake: `"log"` warns with what differs, `"fail"` fails the connection
   * with `QMPSchemaDrift`. Default `"ignore"`.
   */
  readonly schemaCheck?: Qapi.SchemaCheck | undefined
  /** Attributes added to every command's span (a machine adds its name and pid). */
  readonly spanAttributes?: Readonly<Record<string, unknown>> | undefined
}
