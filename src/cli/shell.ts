/**
 * `qemu-machine shell`: an interactive QMP shell (completion from
 * `query-commands`, history, events as they arrive), or with `--json` a
 * line protocol for scripts: one command object per stdin line, one reply
 * or event object per stdout line.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Readline from "node:readline"
import type { QMPConnectError } from "../Errors.js"
import * as Machine from "../Machine.js"
import * as QmpClient from "../QmpClient.js"
import type { Arguments, Event, Greeting, Reply } from "../QmpProtocol.js"
import { binaryOption, CliError, qmpLogOption, track, trafficLog } from "./common.js"

const connectOption = Options.text("connect").pipe(
  Options.withDescription("connect to a running QEMU's QMP at unix:PATH or tcp:HOST:PORT instead of launching one"),
  Options.optional
)
const jsonOption = Options.boolean("json").pipe(
  Options.withDescription("line mode for scripts: JSON commands on stdin, JSON replies and events on stdout")
)

/** Parses `name`, `name {"json": 1}` or `name key=value ...` into a command and its arguments. */
export const parseCommandLine = (line: string): { readonly command: string; readonly args?: Arguments } | string => {
  const trimmed = line.trim()
  const space = trimmed.search(/\s/)
  if (space < 0) return { command: trimmed }
  const command = trimmed.slice(0, space)
  const rest = trimmed.slice(space + 1).trim()
  if (rest.startsWith("{")) {
    try {
      const args = JSON.parse(rest) as unknown
      if (args === null || typeof args !== "object" || Array.isArray(args)) return "arguments must be a JSON object"
      return { command, args: args as Arguments }
    } catch (e) {
      return `invalid JSON arguments: ${(e as Error).message}`
    }
  }
  const args: Record<string, unknown> = {}
  for (const pair of rest.split(/\s+/)) {
    const eq = pair.indexOf("=")
    if (eq <= 0) return `expected key=value, got ${JSON.stringify(pair)}`
    const raw = pair.slice(eq + 1)
    let value: unknown = raw
    try {
      value = JSON.parse(raw)
    } catch {
      // a bare word is a string
    }
    args[pair.slice(0, eq)] = value
  }
  return { command, args }
}

/** What the shell talks to: a QMP session, through the machine when it launched one (so a user's `quit` counts). */
interface ShellSession {
  readonly greeting: Greeting
  readonly executeRaw: (command: string, args?: Arguments) => Effect.Effect<Reply, { readonly _tag: string; readonly message: string }>
  readonly events: Stream.Stream<Event>
}

const connectTo = (
  target: string,
  onTraffic: QmpClient.QmpClientOptions["onTraffic"]
): Effect.Effect<ShellSession, QmpClient.SessionError | QMPConnectError | CliError, Scope.Scope> => {
  if (target.startsWith("unix:")) return QmpClient.connect({ path: target.slice(5) }, { onTraffic })
  const tcp = /^tcp:(.+):(\d+)$/.exec(target)
  if (tcp !== null) return QmpClient.connect({ host: tcp[1]!, port: Number(tcp[2]) }, { onTraffic })
  return Effect.fail(new CliError({ message: `--connect wants unix:PATH or tcp:HOST:PORT, got ${target}` }))
}

const linesOf = (input: NodeJS.ReadableStream) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<string | null>()
    const rl = yield* Effect.acquireRelease(
      Effect.sync(() => Readline.createInterface({ input, terminal: false })),
      (rl) => Effect.sync(() => rl.close())
    )
    rl.on("line", (line) => queue.unsafeOffer(line))
    rl.on("close", () => queue.unsafeOffer(null))
    return Stream.fromQueue(queue).pipe(Stream.takeWhile((line): line is string => line !== null))
  })

const jsonMode = (qmp: ShellSession) =>
  Effect.gen(function*() {
    yield* qmp.events.pipe(Stream.runForEach((event) => Console.log(JSON.stringify(event))), Effect.forkScoped)
    yield* Console.log(JSON.stringify(qmp.greeting))
    const lines = yield* linesOf(process.stdin)
    yield* lines.pipe(
      Stream.filter((line) => line.trim() !== ""),
      Stream.runForEach((line) => {
        let parsed: unknown
        try {
          parsed = JSON.parse(line)
        } catch (e) {
          return Console.log(JSON.stringify({ error: { class: "ShellError", desc: (e as Error).message } }))
        }
        const command = parsed as { execute?: unknown; arguments?: unknown; id?: unknown }
        if (typeof command.execute !== "string") {
          return Console.log(JSON.stringify({ error: { class: "ShellError", desc: "expected {\"execute\": ...}" } }))
        }
        // The reply carries the caller's id (if any) in place of the session's own.
        const withId = (reply: Reply) => {
          const { id: _ours, ...rest } = reply
          return command.id === undefined ? rest : { ...rest, id: command.id }
        }
        return qmp.executeRaw(command.execute, command.arguments as Arguments | undefined).pipe(
          Effect.flatMap((reply) => Console.log(JSON.stringify(withId(reply)))),
          Effect.catchAll((e) => Console.log(JSON.stringify({ error: { class: e._tag, desc: e.message } })))
        )
      })
    )
  })

const interactive = (qmp: ShellSession) =>
  Effect.gen(function*() {
    const names = yield* qmp.executeRaw("query-commands").pipe(
      Effect.map((reply) =>
        "return" in reply && Array.isArray(reply.return)
          ? (reply.return as ReadonlyArray<{ name: string }>).map((c) => c.name).sort()
          : []
      ),
      Effect.orElseSucceed(() => [] as Array<string>)
    )
    const rl = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Readline.createInterface({
          input: process.stdin,
          output: process.stdout,
          historySize: 1000,
          completer: (line: string) => {
            const hits = names.filter((name) => name.startsWith(line.trim()))
            return [hits.length > 0 ? hits : names, line.trim()]
          }
        })
      ),
      (rl) => Effect.sync(() => rl.close())
    )
    const v = qmp.greeting.QMP.version.qemu
    yield* Console.log(
      `QMP shell: QEMU ${v.major}.${v.minor}.${v.micro}; ${names.length} commands (Tab completes); Ctrl-D quits`
    )
    yield* qmp.events.pipe(
      Stream.runForEach((event) =>
        Effect.sync(() => {
          process.stdout.write(`\n<- ${event.event} ${JSON.stringify(event.data ?? {})}\n`)
          rl.prompt(true)
        })
      ),
      Effect.forkScoped
    )
    const ask = Effect.async<Option.Option<string>>((resume) => {
      const onClose = () => resume(Effect.succeedNone)
      rl.once("close", onClose)
      rl.question("(QEMU) ", (answer) => {
        rl.off("close", onClose)
        resume(Effect.succeedSome(answer))
      })
    })
    for (;;) {
      const line = yield* ask
      if (Option.isNone(line)) return
      if (line.value.trim() === "") continue
      const parsed = parseCommandLine(line.value)
      if (typeof parsed === "string") {
        yield* Console.log(`error: ${parsed}`)
        continue
      }
      const reply = yield* Effect.either(qmp.executeRaw(parsed.command, parsed.args))
      yield* Console.log(reply._tag === "Right" ? JSON.stringify(reply.right, null, 2) : `error: ${reply.left.message}`)
      if (parsed.command === "quit" && reply._tag === "Right") return
    }
  })

/** The `shell` subcommand; `qemuArgs` (after `--`) go to the QEMU it launches. */
export const shell = (qemuArgs: ReadonlyArray<string>) =>
  Command.make(
    "shell",
    { qemu: binaryOption, connect: connectOption, json: jsonOption, qmpLog: qmpLogOption },
    (options) =>
      Effect.gen(function*() {
        const onTraffic = yield* trafficLog(options.qmpLog)
        const qmp = yield* Option.match(options.connect, {
          onNone: () =>
            Effect.gen(function*() {
              const vm = yield* Machine.launch({
                binary: options.qemu,
                machineType: qemuArgs.length === 0 ? "none" : undefined,
                args: qemuArgs,
                qmp: { onTraffic }
              })
              yield* track(vm)
              const client = yield* vm.qmp
              return { greeting: client.greeting, executeRaw: client.executeRaw, events: client.events } satisfies ShellSession
            }),
          onSome: (target) => connectTo(target, onTraffic)
        })
        yield* options.json ? jsonMode(qmp) : interactive(qmp)
      }).pipe(Effect.scoped)
  ).pipe(Command.withDescription("an interactive QMP shell on a new QEMU (args after --) or on --connect"))
