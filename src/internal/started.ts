/**
 * What a started machine is made of: the launch (`launch.ts`,
 * `connect.ts`) makes it, `lifecycle.ts` and `Machine.ts` use it. Types
 * only, in a module of their own: the declarations a package user's
 * compiler reads through `Machine` reach this and not the launch's steps.
 */
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as ConsoleSocket from "../ConsoleSocket.js"
import type { VMLaunchFailure } from "../Errors.js"
import type * as GuestAgent from "../GuestAgent.js"
import type * as QemuProcess from "../QemuProcess.js"
import type * as QmpClient from "../QmpClient.js"
import type * as Recorder from "./recorder.js"

/** What a started machine is made of. */
export interface Started {
  readonly name: string
  readonly command: ReadonlyArray<string>
  readonly child: QemuProcess.ChildHandle
  readonly qmp: Option.Option<QmpClient.QmpClientService>
  /**
   * The QMP handshake, if the launch left it to be waited for last: the
   * machine is launched once it has succeeded. On failure (QEMU's status and
   * output in the error) or interruption it closes the machine's scope.
   */
  readonly ready: Effect.Effect<void, VMLaunchFailure>
  /**
   * Releases what the QMP session holds (its fibers, event hubs, socket)
   * ahead of the machine's scope: a shutdown does it while QEMU exits.
   */
  readonly releaseQmp: Effect.Effect<void>
  readonly console: Option.Option<ConsoleSocket.ConsoleSocketService>
  readonly guestAgent: Option.Option<GuestAgent.GuestAgentService>
  readonly tempDir: string
  /**
   * Removes the temp dir now, unless it is kept (a shutdown does it while
   * QEMU exits; the log stays readable through its descriptor).
   */
  readonly removeTempDir: Effect.Effect<void>
  readonly logDir: string
  readonly logPath: string
  /** QEMU's output so far (its last `MAX_LOG` bytes). */
  readonly readLog: Effect.Effect<string>
  /** The flight recorder, unless the config turned it off. */
  readonly recorder: Option.Option<Recorder.Recorder>
}
