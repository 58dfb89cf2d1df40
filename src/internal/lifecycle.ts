/**
 * A running machine's end: `shutdown`, `kill` and `wait`, as QEMU's Python
 * `QEMUMachine` means them (`_early_cleanup`, `_soft_shutdown`,
 * `_hard_shutdown`, `_post_shutdown`), and the scope finalizer that runs the
 * same path. See `docs/lifecycle.md`.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import { AbnormalShutdown } from "../Errors.js"
import * as QemuProcess from "../QemuProcess.js"
import * as Deadline from "./deadline.js"
import type { Started } from "./started.js"
import { formatCommand } from "./redact.js"
import * as Tracing from "./tracing.js"

/** Where the machine is in its life. */
export type State = "running" | "shutting-down" | "stopped"

/** How to shut down. */
export interface ShutdownOptions {
  readonly hard?: boolean | undefined
  readonly timeout?: Duration.DurationInput | undefined
}

/** The end of a running machine. */
export interface Lifecycle {
  readonly state: Effect.Effect<State>
  readonly shutdown: (options?: ShutdownOptions) => Effect.Effect<void, AbnormalShutdown>
  readonly kill: Effect.Effect<void, AbnormalShutdown>
  readonly wait: (timeout?: Duration.DurationInput) => Effect.Effect<void, AbnormalShutdown>
  readonly log: Effect.Effect<string>
}

const DEFAULT_SHUTDOWN_TIMEOUT = Duration.seconds(30)
const HARD_KILL_TIMEOUT = Duration.seconds(60)

/**
 * The running machine's end. `machineScope` holds what it owns; closing it
 * is the last step of every shutdown. `finalizer`, for the scope the machine
 * was launched in, shuts down like `shutdown({ timeout: shutdownTimeout })`;
 * an abnormal end there is logged, not hidden.
 */
export const make = (
  started: Started,
  machineScope: Scope.CloseableScope,
  shutdownTimeout: Duration.DurationInput | undefined
): { readonly lifecycle: Lifecycle; readonly finalizer: Effect.Effect<void> } => {
  // Made in plain code, while QEMU starts: `launch` adds the finalizer once the machine is up.
  const { child, command } = started
  const annotations = { machine: started.name, pid: child.pid }
  let state: State = "running"
  // `wait` counts QEMU's own exit as a quit, as `wait` of QEMU's Python `QEMUMachine` does.
  let exitedByItself = false
  let userKilled = false
  let finalLog: string | undefined
  const stopped = Deferred.unsafeMake<void>(FiberId.none)
  const quitIssued = Effect.suspend(() =>
    exitedByItself ? Effect.succeed(true) : Option.match(started.qmp, {
      onNone: () => Effect.succeed(false),
      onSome: (qmp) => qmp.quitAccepted
    })
  )

  // _early_cleanup: close the console first, or QEMU may block writing to it while we wait.
  const earlyCleanup = Option.match(started.console, { onNone: () => Effect.void, onSome: (c) => c.close })
  // Also releases the session's fibers and hubs: during a shutdown, while QEMU exits.
  const closeQmp = Option.match(started.qmp, {
    onNone: () => Effect.void,
    onSome: (c) => Effect.zipRight(c.close, started.releaseQmp)
  })

  // Its warning (a dir that could not be removed) says which machine.
  const removeTempDir = Effect.annotateLogs(started.removeTempDir, annotations)

  const hardShutdown = Effect.gen(function*() {
    yield* earlyCleanup
    yield* child.kill("SIGKILL")
    yield* removeTempDir
    yield* child.waitTree(HARD_KILL_TIMEOUT).pipe(
      Effect.mapError((cause) =>
        new AbnormalShutdown({ detail: "QEMU did not exit after SIGKILL", exitCode: null, signal: null, cause })
      )
    )
  })

  /**
   * `quit`, then the exit. A monitor already gone (QEMU quit by itself, or
   * was killed) still fails the soft path, as the Python original's, but first QEMU
   * gets the rest of the timeout to exit: a monitor closes a moment before
   * the exit status arrives, and a SIGKILL in between would hide the real one.
   *
   * The timeout is a deadline on the fiber's clock: the two waits on QEMU
   * (the reply to `quit`, the exit) get what is left of it, and their timers
   * fire inside this uninterruptible region (which stays uninterruptible:
   * a finalizer's fiber may have been interrupted already, and the soft
   * path must still run to its end). No timer fiber around the whole
   * (its fork was a step of every shutdown; docs/performance.md). The steps
   * between are local closes and removals that do not wait on QEMU.
   */
  const softShutdown = (timeout: Duration.Duration) =>
    Effect.clockWith((clock) => {
      const deadline = Deadline.onClock(timeout, clock)
      const timedOut = () => new QemuProcess.WaitTimeout(child.pid, Duration.toMillis(timeout))
      return Effect.gen(function*() {
        yield* earlyCleanup
        let quitFailed: { readonly _tag: string; readonly message: string } | undefined
        if (Option.isSome(started.qmp)) {
          if (!(yield* quitIssued)) {
            const quit = yield* Effect.either(
              started.qmp.value.executeRaw("quit", undefined, { timeout: Deadline.remaining(deadline) })
            )
            // Nothing interrupts this region, and `_post_shutdown` closes QMP on any other way out.
            yield* closeQmp
            if (Either.isLeft(quit)) {
              if (quit.left._tag === "QMPTimeout") return yield* Effect.fail(timedOut())
              if (quit.left._tag !== "QMPDisconnected") return yield* Effect.fail(quit.left)
              quitFailed = quit.left
            }
          } else {
            yield* closeQmp
          }
        }
        // QEMU is on its way out: its files go while it exits, not after (the log stays readable).
        yield* removeTempDir
        yield* child.wait(Deadline.remaining(deadline)).pipe(Effect.mapError(timedOut))
        if (quitFailed !== undefined) return yield* Effect.fail(quitFailed)
      })
    })

  const softThenHard = (timeout: Duration.Duration) =>
    softShutdown(timeout).pipe(
      Effect.catchAll((cause) =>
        Effect.gen(function*() {
          yield* Tracing.annotate("shutdown.path", "soft-failed-hard")
          yield* hardShutdown
          const status = yield* child.status
          return yield* new AbnormalShutdown({
            detail: Option.isSome(status) && status.value.signal === "SIGKILL"
              ? "QEMU was killed"
              : "QEMU ended without a clean quit",
            exitCode: Option.getOrNull(Option.flatMap(status, (s) => Option.fromNullable(s.exitCode))),
            signal: Option.getOrNull(Option.flatMap(status, (s) => Option.fromNullable(s.signal))),
            cause
          })
        })
      )
    )

  // _post_shutdown: close QMP, keep the log, release everything, report a signal nobody asked for.
  const postShutdown = Effect.gen(function*() {
    yield* earlyCleanup
    yield* closeQmp
    finalLog = yield* started.readLog
    const status = yield* child.status
    yield* Scope.close(machineScope, Exit.void)
    const signal = Option.getOrNull(Option.map(status, (s) => s.signal))
    if (signal !== null && !(userKilled && signal === "SIGKILL")) {
      yield* Effect.annotateLogs(
        Effect.logWarning(`qemu received signal ${signal}; command: "${formatCommand(command)}"`),
        annotations
      )
    }
    state = "stopped"
    yield* Deferred.succeed(stopped, undefined)
  })

  const spanAttributes = { "qemu.machine": started.name, "qemu.pid": child.pid }
  // One look at the tracer for the span and its path (each is an Effect step before `quit` goes out).
  const shutdown = (options?: ShutdownOptions): Effect.Effect<void, AbnormalShutdown> =>
    Effect.tracerWith((tracer) => {
      const traced = tracer !== Tracing.builtIn
      /** `effect`, the span told which path it is (untraced, nothing to tell and no step for it). */
      const onPath = <A, E>(name: string, effect: Effect.Effect<A, E>) =>
        traced ? Effect.zipRight(Effect.annotateCurrentSpan("shutdown.path", name), effect) : effect
      const run = Effect.uninterruptible(Effect.suspend(() => {
        if (state !== "running") return onPath("already", Deferred.await(stopped))
        state = "shutting-down"
        const work = options?.hard === true
          ? Effect.zipRight(
            Effect.sync(() => {
              userKilled = true
            }),
            onPath("hard", hardShutdown)
          )
          : onPath("soft", softThenHard(Duration.decode(options?.timeout ?? DEFAULT_SHUTDOWN_TIMEOUT)))
        return Effect.ensuring(work, postShutdown)
      }))
      return traced ? Effect.withSpan(run, "Machine.shutdown", { attributes: spanAttributes }) : run
    })

  const lifecycle: Lifecycle = {
    state: Effect.sync(() => state),
    shutdown,
    // During a graceful shutdown, kill escalates it: SIGKILL now, then the shutdown's own cleanup.
    kill: Effect.uninterruptible(Effect.suspend(() => {
      if (state !== "shutting-down") return shutdown({ hard: true })
      userKilled = true
      return Effect.zipRight(child.kill("SIGKILL"), Deferred.await(stopped))
    })),
    wait: (timeout) =>
      Effect.suspend(() => {
        if (state !== "running") return Deferred.await(stopped)
        const duration = Duration.decode(timeout ?? DEFAULT_SHUTDOWN_TIMEOUT)
        // Unlike the Python original, the waiting itself can be interrupted (the scope's finalizer then shuts down).
        return child.wait(duration).pipe(
          Effect.either,
          Effect.flatMap((waited) => {
            exitedByItself = true
            // Exited: a clean shutdown. Still running after the timeout: the soft path fails at once, as the Python original's.
            return shutdown({ timeout: Either.isRight(waited) ? duration : Duration.zero })
          })
        )
      }).pipe(Tracing.withSpan("Machine.wait", { attributes: spanAttributes })),
    log: Effect.suspend(() => finalLog !== undefined ? Effect.succeed(finalLog) : started.readLog)
  }
  // The warnings carry the machine's name and pid themselves: annotating the whole shutdown would be a fiber-ref
  // change and its undoing (about 17 Effect steps) before `quit` goes out (docs/performance.md).
  const finalizer = Effect.suspend(() =>
    Effect.catchAll(
      shutdown({ timeout: shutdownTimeout ?? DEFAULT_SHUTDOWN_TIMEOUT }),
      (e) => Effect.annotateLogs(Effect.logWarning(e.message), annotations)
    )
  )
  return { lifecycle, finalizer }
}
