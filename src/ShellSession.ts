/**
 * A shell on a serial console, typed: run a command and get its exit code
 * and output, log in at a getty, interrupt what runs. Commands from several
 * fibers run one at a time.
 *
 * ```ts
 * const shell = yield* ShellSession.make(yield* vm.console)   // waits for the prompt
 * const { exitCode, output } = yield* shell.run("uname -r")
 * const kernel = yield* shell.succeed("uname -r")             // ShellCommandFailed on a non-zero exit
 * ```
 *
 * Each command is framed by two markers the shell prints, built from a
 * random id so that no output (nor the echo of the command line itself) can
 * look like them: `output` is exactly what the command wrote, however much
 * and whatever it contains (serial line endings made `\n`).
 *
 * @module
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as NodeCrypto from "node:crypto"
import type * as ConsoleSocket from "./ConsoleSocket.js"
import { ConsoleClosed, ShellCommandFailed, ShellInterrupted } from "./Errors.js"
import * as Tracing from "./internal/tracing.js"

/** Options of a shell session. */
export interface ShellOptions {
  /**
   * The prompt, matched unanchored (busybox follows its prompt with a cursor
   * query, `ESC[6n`). Default `# ` or `$ ` after a line start.
   */
  readonly prompt?: string | RegExp | undefined
  /** Patterns that fail any wait at once (`ConsoleFailure`). Default: `Kernel panic`. */
  readonly failOn?: ReadonlyArray<string | RegExp> | undefined
  /** Default timeout of a command, and of waiting for a prompt. Default 60 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** The most output one command may return (characters). Default 64 MiB. */
  readonly maxOutput?: number | undefined
}

/** What a command did. */
export interface RunResult {
  readonly exitCode: number
  /** Everything it wrote to the terminal (stdout and stderr), `\r\n` made `\n`. */
  readonly output: string
}

/** Errors a session's operations can end in. */
export type ShellError = ConsoleSocket.WaitError | ShellInterrupted

/** A shell on a console. */
export interface ShellSessionService {
  /** Runs a command line (one line, or several) and returns its exit code and output. */
  readonly run: (command: string, options?: { readonly timeout?: Duration.DurationInput | undefined }) => Effect.Effect<RunResult, ShellError>
  /** `run`, failing with `ShellCommandFailed` unless the exit code is 0; the output on success (NixOS's `succeed`). */
  readonly succeed: (
    command: string,
    options?: { readonly timeout?: Duration.DurationInput | undefined }
  ) => Effect.Effect<string, ShellError | ShellCommandFailed>
  /** Sends Ctrl-C: a command running now fails with `ShellInterrupted`; waits for the prompt. */
  readonly interrupt: Effect.Effect<void, ConsoleSocket.WaitError>
  /** Waits for the prompt (after draining what came before). */
  readonly waitForPrompt: Effect.Effect<void, ConsoleSocket.WaitError>
}

const DEFAULT_PROMPT = /(?:^|\n)[^\n]*[#$] (?:\x1b\[6n)?/
// A string, searched in the new output only (a RegExp is searched in all the unconsumed output at each chunk).
const DEFAULT_FAIL_ON: ReadonlyArray<string | RegExp> = ["Kernel panic"]

/**
 * A session on a console whose shell is already running (or about to be):
 * drains what came before, asks for a fresh prompt, and waits for it.
 */
export const make = (
  console: ConsoleSocket.ConsoleSocketService,
  options: ShellOptions = {}
): Effect.Effect<ShellSessionService, ConsoleSocket.WaitError> =>
  Effect.gen(function*() {
    const prompt = options.prompt ?? DEFAULT_PROMPT
    const failOn = options.failOn ?? DEFAULT_FAIL_ON
    const timeout = options.timeout ?? Duration.seconds(60)
    const maxOutput = options.maxOutput ?? 64 * 1024 * 1024
    const oneAtATime = yield* Effect.makeSemaphore(1)
    let interrupted = yield* Deferred.make<void>()

    const waitForPrompt = Effect.zipRight(
      console.drain,
      Effect.zipRight(console.write("\r"), console.waitFor(prompt, { timeout, failOn }))
    ).pipe(Effect.asVoid)

    const run = (command: string, runOptions?: { readonly timeout?: Duration.DurationInput | undefined }) =>
      oneAtATime.withPermits(1)(Effect.scoped(Effect.gen(function*() {
        const id = NodeCrypto.randomBytes(6).toString("hex")
        // The markers as printed; the command line's echo has them split by printf's arguments.
        const start = `__QM_S_${id}__`
        const end = new RegExp(`__QM_E_${id}_(\\d+)__`)
        // Waited for as a string, then the exit code after it: a command's output can be large, and a string
        // wait searches only what is new.
        const endMarker = `__QM_E_${id}_`
        yield* console.drain
        const collected = yield* collect(console.output, end, maxOutput)
        const line = `printf '%s%s__\\n' __QM_S_ ${id}; {\n${command}\n}; printf '\\n%s%s_%d__\\n' __QM_E_ ${id} $?\r`
        yield* console.write(line)
        const done = yield* Effect.raceFirst(
          Effect.zipRight(
            console.waitFor(endMarker, { timeout: runOptions?.timeout ?? timeout, failOn }),
            console.waitFor(/^(\d+)__/, { timeout, failOn })
          ),
          Effect.zipRight(
            Deferred.await(interrupted),
            Effect.fail(new ShellInterrupted({ command }))
          )
        )
        yield* console.waitFor(prompt, { timeout, failOn })
        const text = (yield* collected).replace(/\r\n/g, "\n")
        const from = text.indexOf(start)
        const to = text.search(end)
        const output = from < 0 || to < 0 ? "" : text.slice(text.indexOf("\n", from) + 1, to).replace(/\n$/, "")
        return { exitCode: Number(done.groups[0]), output }
      }))).pipe(Tracing.withSpan("ShellSession.run", { attributes: { "shell.command": command } }))

    const service: ShellSessionService = {
      run,
      succeed: (command, runOptions) =>
        Effect.flatMap(run(command, runOptions), ({ exitCode, output }) =>
          exitCode === 0 ? Effect.succeed(output) : Effect.fail(new ShellCommandFailed({ command, exitCode, output }))),
      interrupt: Effect.gen(function*() {
        const previous = interrupted
        interrupted = yield* Deferred.make<void>()
        yield* Deferred.succeed(previous, undefined)
        yield* console.write("\x03")
        yield* console.waitFor(prompt, { timeout, failOn })
      }),
      waitForPrompt
    }
    yield* waitForPrompt
    return service
  }).pipe(Tracing.withSpan("ShellSession.make"))

/**
 * Logs in at a getty-style prompt (`login:`, then `Password:`), then is a
 * session like `make`'s. A wrong password fails at once (`ConsoleFailure` on
 * "Login incorrect").
 */
export const login = (
  console: ConsoleSocket.ConsoleSocketService,
  credentials: { readonly user: string; readonly password: string },
  options: ShellOptions = {}
): Effect.Effect<ShellSessionService, ConsoleSocket.WaitError> =>
  Effect.gen(function*() {
    const timeout = options.timeout ?? Duration.seconds(60)
    const failOn = [...(options.failOn ?? DEFAULT_FAIL_ON), /Login incorrect/]
    yield* console.drain
    yield* console.write("\r")
    yield* console.waitFor(/login: ?/, { timeout, failOn })
    yield* console.write(`${credentials.user}\r`)
    yield* console.waitFor(/Password: ?/, { timeout, failOn })
    yield* console.write(`${credentials.password}\r`)
    yield* console.waitFor(options.prompt ?? DEFAULT_PROMPT, { timeout, failOn })
    return yield* make(console, options)
  }).pipe(Tracing.withSpan("ShellSession.login", { attributes: { "shell.user": credentials.user } }))

/**
 * Collects the console's output from now on (decoded), up to `max`
 * characters, until `end` shows; the effect it returns waits for that.
 */
const collect = (output: Stream.Stream<Uint8Array>, end: RegExp, max: number) =>
  Effect.gen(function*() {
    const decoder = new TextDecoder()
    let text = ""
    const seen = yield* Deferred.make<string, ConsoleClosed>()
    yield* output.pipe(
      Stream.runForEach((chunk) =>
        Effect.suspend(() => {
          if (text.length < max) text += decoder.decode(chunk, { stream: true })
          // Only the new part (and a marker's length before it) can hold the end.
          return end.test(text.slice(-chunk.length - 64)) ? Deferred.succeed(seen, text) : Effect.void
        })
      ),
      Effect.zipRight(Deferred.fail(seen, new ConsoleClosed({ operation: "run", detail: "the console closed", tail: text.slice(-512) }))),
      Effect.forkScoped
    )
    return Deferred.await(seen)
  })
