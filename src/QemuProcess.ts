/**
 * Spawning QEMU: an argv array (never a shell), stdin closed, output to a
 * file descriptor, extra descriptors inherited at fixed numbers. A scoped
 * resource: the scope's end kills the process if it still runs and waits
 * for it.
 *
 * @module
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as ChildProcess from "node:child_process"
import type { Duplex } from "node:stream"
import * as OneShot from "./internal/oneShot.js"
import * as Procfs from "./internal/procfs.js"
import * as Resource from "./internal/resource.js"

/** How a process ended. Exactly one of the two is set. */
export interface ExitStatus {
  readonly exitCode: number | null
  readonly signal: NodeJS.Signals | null
}

/** What one inherited descriptor slot (fd 3 and up) holds: a new socket pair (the parent's end is in `streams`), or an open descriptor of this process, inherited as is. */
export type ExtraFd = "socketpair" | number

/** What to spawn. */
export interface SpawnOptions {
  /** The full argv; `command[0]` is the program (found on `PATH`). */
  readonly command: ReadonlyArray<string>
  /** Where stdout and stderr go: an open descriptor, or discarded. */
  readonly output: number | "ignore"
  /** Descriptors for fd 3, 4, ... in the child. */
  readonly extraFds?: ReadonlyArray<ExtraFd> | undefined
  /** Environment; default the parent's. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
  /**
   * The command may fork (a wrapper such as `timeout` or `sh -c`): `kill`,
   * `waitTree` and the finalizer then also find the tree's other processes
   * in /proc (about a millisecond a look). Default false: signals go to the
   * process group, which is enough for a command that execs.
   */
  readonly forks?: boolean | undefined
}

/** The program could not be started (not found, not executable, ...). */
export class SpawnError {
  readonly _tag = "SpawnError"
  constructor(readonly command: ReadonlyArray<string>, readonly error: Error) {}
  get message(): string {
    return `cannot spawn ${this.command[0]}: ${this.error.message}`
  }
}

/** `wait` timed out; the process still runs. */
export class WaitTimeout {
  readonly _tag = "WaitTimeout"
  constructor(readonly pid: number, readonly timeoutMillis: number) {}
  get message(): string {
    return `process ${this.pid} still running after ${this.timeoutMillis} ms`
  }
}

/** A running (or exited) child process. */
export interface ChildHandle {
  readonly pid: number
  readonly command: ReadonlyArray<string>
  /** The parent's end of each `"socketpair"` slot, by slot (index 0 is fd 3). */
  readonly streams: ReadonlyArray<Duplex | undefined>
  /** The exit status if it has exited. */
  readonly status: Effect.Effect<Option.Option<ExitStatus>>
  /** Waits for the exit, however long. */
  readonly awaitExit: Effect.Effect<ExitStatus>
  /** Waits for the exit, at most `timeout`. */
  readonly wait: (timeout: Duration.DurationInput) => Effect.Effect<ExitStatus, WaitTimeout>
  /**
   * Sends a signal to the whole process tree: the process, its process group
   * and its descendants (a wrapper such as `timeout` or `sh -c` forks QEMU,
   * which would outlive a signal sent to the wrapper alone). Members of the
   * group still alive after the process exited get it too. Default SIGKILL.
   */
  readonly kill: (signal?: NodeJS.Signals) => Effect.Effect<void>
  /**
   * Waits, at most `timeout`, until the process has exited and no other
   * process of its tree (group members, descendants) is alive.
   */
  readonly waitTree: (timeout: Duration.DurationInput) => Effect.Effect<ExitStatus, WaitTimeout>
}

/** Spawns processes. */
export interface QemuProcessService {
  /** Spawns `options.command`; the scope's end kills the process tree if it still runs, and waits for it. */
  readonly spawn: (options: SpawnOptions) => Effect.Effect<ChildHandle, SpawnError, Scope.Scope>
}

const KILL_TIMEOUT = Duration.seconds(60)
const TREE_POLL = Duration.millis(5)


/**
 * Signals a child's whole tree. While the child runs, its group is signalled
 * at once (it leads its own group: spawned `detached`); with `forks`,
 * descendants that left the group and members left after the child exited
 * are signalled one by one. Once the
 * child is reaped its pid could be reused, so the group is then addressed
 * only through members found in /proc.
 */
const signalTree = (child: ChildProcess.ChildProcess, signal: NodeJS.Signals, forks: boolean) => {
  const pid = child.pid!
  const others = forks ? Procfs.treeOf(pid) : []
  if (child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-pid, signal)
    } catch {
      child.kill(signal)
    }
  }
  for (const other of others) {
    try {
      process.kill(other, signal)
    } catch {
      // already gone
    }
  }
}

/**
 * Spawns with Node's `child_process.spawn`: no shell, `detached` (its own
 * process group, so a terminal's Ctrl-C reaches us and not QEMU; we decide
 * how it shuts down).
 */
export const spawn = (options: SpawnOptions): Effect.Effect<ChildHandle, SpawnError, Scope.Scope> =>
  Resource.acquireRelease(acquireChild(options), releaseChild(options))

/**
 * `spawn` into `scope`, given rather than taken from the context: the
 * launch's own spawner, which saves providing the scope (a fiber-ref change
 * and its undoing, about 17 Effect steps before QEMU starts).
 *
 * @internal
 */
export const spawnIn = (options: SpawnOptions, scope: Scope.Scope): Effect.Effect<ChildHandle, SpawnError> =>
  Resource.acquireReleaseIn(acquireChild(options), releaseChild(options), scope)

const acquireChild = (options: SpawnOptions): Effect.Effect<ChildHandle, SpawnError> =>
  Effect.gen(function*() {
    const exited = OneShot.make<ExitStatus, never>()
    const forks = options.forks === true
    const [program, ...args] = options.command
    if (program === undefined) {
      return yield* Effect.fail(new SpawnError(options.command, new Error("empty command")))
    }
    const extra = (options.extraFds ?? []).map((slot) => slot === "socketpair" ? "pipe" as const : slot)
    const child = yield* Effect.async<ChildProcess.ChildProcess, SpawnError>((resume) => {
      let child: ChildProcess.ChildProcess
      try {
        child = ChildProcess.spawn(program, args, {
          stdio: ["ignore", options.output, options.output, ...extra],
          detached: true,
          shell: false,
          env: options.env ?? process.env
        })
      } catch (error) {
        // spawn throws synchronously for invalid arguments (e.g. a NUL byte).
        resume(Effect.fail(new SpawnError(options.command, error as Error)))
        return
      }
      child.on("exit", (exitCode, signal) => {
        exited.settle(Exit.succeed({ exitCode, signal }))
      })
      // Keep an error listener for the child's whole life (kill on an exited process, ...).
      child.on("error", () => {})
      // A pid means the exec succeeded (libuv reports exec failures before spawn returns): no need to
      // wait for the 'spawn' event a tick later. Without one, the 'error' event says why.
      if (child.pid !== undefined) return resume(Effect.succeed(child))
      child.once("error", (error) => resume(Effect.fail(new SpawnError(options.command, error))))
    })
    const streams = child.stdio.slice(3).map((stream) => (stream ?? undefined) as Duplex | undefined)
    for (const stream of streams) stream?.on("error", () => {})
    const status = Effect.sync(() =>
      child.exitCode !== null || child.signalCode !== null
        ? Option.some<ExitStatus>({ exitCode: child.exitCode, signal: child.signalCode })
        : Option.none<ExitStatus>()
    )
    const awaitExit = exited.wait
    // A callback wait (no fiber); its timer also fires inside finalizers and other uninterruptible regions.
    const wait = (timeout: Duration.DurationInput) =>
      exited.await({ duration: timeout, onTimeout: () => new WaitTimeout(child.pid!, Duration.toMillis(timeout)) })
    const handle: ChildHandle = {
      pid: child.pid!,
      command: options.command,
      streams,
      status,
      awaitExit,
      wait,
      kill: (signal = "SIGKILL") => Effect.sync(() => signalTree(child, signal, forks)),
      waitTree: (timeout) =>
        forks
          ? Effect.interruptible(Effect.zipLeft(
            awaitExit,
            // Other members of the tree are not our children: no exit event comes for them, so poll.
            Effect.sleep(TREE_POLL).pipe(Effect.repeat({ until: () => Procfs.treeOf(child.pid!).length === 0 }))
          )).pipe(
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () => new WaitTimeout(child.pid!, Duration.toMillis(timeout))
            })
          )
          : wait(timeout)
    }
    return handle
  })

/** The scope's end: kill the tree if it still runs, wait for it, and close our ends of its socket pairs. */
const releaseChild = (options: SpawnOptions) => (handle: ChildHandle): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (Option.isNone(yield* handle.status) || (options.forks === true && Procfs.treeOf(handle.pid).length > 0)) {
      yield* handle.kill("SIGKILL")
      yield* handle.waitTree(KILL_TIMEOUT).pipe(
        Effect.catchAll((e) =>
          Effect.annotateLogs(Effect.logError(`QEMU did not die after SIGKILL: ${e.message}`), { pid: handle.pid })
        )
      )
    }
    for (const stream of handle.streams) stream?.destroy()
  })

/**
 * The process spawner. A reference with Node's spawner as its default: a
 * launch uses the one provided (`Layer.succeed(QemuProcess, ...)`, e.g. a
 * fake), else this.
 */
export class QemuProcess extends Context.Reference<QemuProcess>()("qemu-machine/QemuProcess", {
  defaultValue: (): QemuProcessService => ({ spawn })
}) {}

/** The Node implementation, as a layer. */
export const layer: Layer.Layer<QemuProcess> = Layer.succeed(QemuProcess, { spawn })
