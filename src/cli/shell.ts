/**
 * `qemu-machine shell`: a QMP shell for people who know QEMU's `qmp-shell`:
 * `command key=value ...` (dotted keys build nested objects; numbers,
 * true/false and JSON values are typed), a raw JSON command, `help` and Tab
 * completion of commands and argument names from the live QAPI schema, events
 * as they arrive. It reads a terminal or a pipe alike. With `--json`, a line
 * protocol for scripts: one command object per stdin line, one reply or event
 * object per stdout line, the caller's `id` kept.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Readline from "node:readline"
import type { QMPConnectError } from "../Errors.js"
import * as Machine from "../Machine.js"
import * as QmpClient from "../QmpClient.js"
import type { Arguments, Event, Greeting, Reply } from "../QmpProtocol.js"
import type { CommandSpec, Parsed } from "./args.js"
import { CliError, qemuOption, qmpLogOption, track, trafficLog } from "./common.js"

export const spec: CommandSpec = {
  name: "shell",
  summary: "a QMP shell (as qmp-shell) on a new QEMU (args after --) or on --connect",
  rest: "[-- <qemu args>]",
  options: [
    qemuOption,
    { name: "connect", kind: "value", value: "ADDRESS", description: "a running QEMU's QMP: unix:PATH or tcp:HOST:PORT" },
    { name: "json", kind: "flag", description: "line mode for scripts: JSON commands in, JSON replies and events out" },
    qmpLogOption
  ]
}

/** Splits a line into words as a shell would: quotes group, a backslash escapes. */
const words = (line: string): Array<string> | string => {
  const out: Array<string> = []
  let word: string | undefined
  let quote: string | undefined
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote !== undefined) {
      if (c === quote) quote = undefined
      else if (c === "\\" && quote === "\"" && i + 1 < line.length) word += line[++i]!
      else word += c
    } else if (c === "'" || c === "\"") {
      quote = c
      word ??= ""
    } else if (c === "\\" && i + 1 < line.length) {
      word = (word ?? "") + line[++i]!
    } else if (/\s/.test(c)) {
      if (word !== undefined) out.push(word)
      word = undefined
    } else {
      word = (word ?? "") + c
    }
  }
  if (quote !== undefined) return `unterminated ${quote} quote`
  if (word !== undefined) out.push(word)
  return out
}

/** A value as qmp-shell reads it: an integer, true/false, JSON for `{...}`/`[...]`, else the text. */
const value = (text: string): unknown => {
  if (/^-?\d+$/.test(text)) return Number(text)
  if (text.toLowerCase() === "true") return true
  if (text.toLowerCase() === "false") return false
  if (text.startsWith("{") || text.startsWith("[")) {
    try {
      return JSON.parse(text)
    } catch {
      // not JSON: the text itself
    }
  }
  return text
}

/**
 * Parses `name key=value ...` as qmp-shell does (dotted keys build nested
 * objects), `name {"json": ...}`, or a whole JSON command object.
 */
export const parseCommandLine = (line: string): { readonly command: string; readonly args?: Arguments } | string => {
  const trimmed = line.trim()
  if (trimmed.startsWith("{")) {
    try {
      const command = JSON.parse(trimmed) as { execute?: unknown; arguments?: unknown }
      if (typeof command.execute !== "string") return "a JSON command needs \"execute\""
      return command.arguments === undefined
        ? { command: command.execute }
        : { command: command.execute, args: command.arguments as Arguments }
    } catch (e) {
      return `invalid JSON: ${(e as Error).message}`
    }
  }
  const space = trimmed.search(/\s/)
  const rest = space < 0 ? "" : trimmed.slice(space + 1).trim()
  const command = space < 0 ? trimmed : trimmed.slice(0, space)
  if (rest === "") return { command }
  if (rest.startsWith("{")) {
    const args = value(rest)
    return typeof args === "object" && args !== null && !Array.isArray(args)
      ? { command, args: args as Arguments }
      : "arguments must be a JSON object"
  }
  const pairs = words(rest)
  if (typeof pairs === "string") return pairs
  const args: Record<string, unknown> = {}
  for (const pair of pairs) {
    const eq = pair.indexOf("=")
    if (eq <= 0) return `expected key=value, got ${JSON.stringify(pair)}`
    const path = pair.slice(0, eq).split(".")
    let parent = args
    for (const [depth, key] of path.slice(0, -1).entries()) {
      const next = parent[key] ?? {}
      if (typeof next !== "object" || next === null || Array.isArray(next)) {
        return `cannot use "${path.slice(0, depth + 1).join(".")}" as both leaf and non-leaf key`
      }
      parent = parent[key] = next as Record<string, unknown>
    }
    const leaf = path[path.length - 1]!
    if (leaf in parent) return `cannot set "${pair.slice(0, eq)}" twice`
    parent[leaf] = value(pair.slice(eq + 1))
  }
  return { command, args }
}

/** One argument of a command, from the QAPI schema: its dotted name, type and whether it is optional. */
interface ArgumentInfo {
  readonly name: string
  readonly type: string
  readonly optional: boolean
}

/** Commands and their arguments (nested members as dotted names), read from `query-qmp-schema`. */
export const describeCommands = (schema: unknown): ReadonlyMap<string, ReadonlyArray<ArgumentInfo>> => {
  const entries = Array.isArray(schema) ? schema as ReadonlyArray<Record<string, unknown>> : []
  const byName = new Map(entries.map((e) => [String(e.name), e]))
  const typeName = (name: string): string => {
    const entry = byName.get(name)
    const meta = entry?.["meta-type"]
    if (meta === "builtin") return String(entry?.["json-type"] ?? name)
    if (meta === "array") return `${typeName(String(entry?.["element-type"]))}[]`
    if (meta === "enum") return (entry?.["members"] as ReadonlyArray<{ name: string }> | undefined)?.map((m) => m.name).join("|") ?? "enum"
    return String(meta ?? name)
  }
  const members = (type: string, prefix: string, depth: number): Array<ArgumentInfo> => {
    const entry = byName.get(type)
    if (entry?.["meta-type"] !== "object" || depth > 3) return []
    return (entry["members"] as ReadonlyArray<{ name: string; type: string; default?: null }>).flatMap((m) => [
      { name: `${prefix}${m.name}`, type: typeName(m.type), optional: "default" in m },
      ...members(m.type, `${prefix}${m.name}.`, depth + 1)
    ])
  }
  const commands = new Map<string, ReadonlyArray<ArgumentInfo>>()
  for (const entry of entries) {
    if (entry["meta-type"] === "command") commands.set(String(entry.name), members(String(entry["arg-type"]), "", 0))
  }
  return commands
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

/** Stdin as lines, for a terminal (with a prompt and completion) or a pipe alike; ends at EOF. */
const stdinLines = (completer?: Readline.Completer) =>
  Effect.gen(function*() {
    const queue = yield* Queue.unbounded<string | null>()
    const terminal = process.stdin.isTTY === true
    const rl = yield* Effect.acquireRelease(
      Effect.sync(() =>
        Readline.createInterface({
          input: process.stdin,
          ...(terminal ? { output: process.stdout, terminal: true, historySize: 1000, completer } : { terminal: false })
        })
      ),
      (rl) => Effect.sync(() => rl.close())
    )
    rl.setPrompt("(QEMU) ")
    rl.on("line", (line) => queue.unsafeOffer(line))
    rl.on("close", () => queue.unsafeOffer(null))
    return {
      lines: Stream.fromQueue(queue).pipe(Stream.takeWhile((line): line is string => line !== null)),
      prompt: Effect.sync(() => terminal && rl.prompt(true)),
      terminal
    }
  })

const jsonMode = (qmp: ShellSession) =>
  Effect.gen(function*() {
    yield* qmp.events.pipe(Stream.runForEach((event) => Console.log(JSON.stringify(event))), Effect.forkScoped)
    yield* Console.log(JSON.stringify(qmp.greeting))
    const input = yield* stdinLines()
    yield* input.lines.pipe(
      Stream.filter((line) => line.trim() !== ""),
      Stream.mapEffect((line) => {
        let command: { execute?: unknown; arguments?: unknown; id?: unknown }
        try {
          command = JSON.parse(line)
        } catch (e) {
          return Effect.as(Console.log(JSON.stringify({ error: { class: "ShellError", desc: (e as Error).message } })), false)
        }
        if (typeof command.execute !== "string") {
          return Effect.as(Console.log(JSON.stringify({ error: { class: "ShellError", desc: "expected {\"execute\": ...}" } })), false)
        }
        const name = command.execute
        // The reply carries the caller's id (if any) in place of the session's own.
        const withId = (reply: Reply) => {
          const { id: _ours, ...rest } = reply
          return command.id === undefined ? rest : { ...rest, id: command.id }
        }
        return qmp.executeRaw(name, command.arguments as Arguments | undefined).pipe(
          Effect.tap((reply) => Console.log(JSON.stringify(withId(reply)))),
          Effect.map((reply) => name === "quit" && "return" in reply),
          Effect.catchAll((e) => Effect.as(Console.log(JSON.stringify({ error: { class: e._tag, desc: e.message } })), false))
        )
      }),
      // A user's quit is the end of the session.
      Stream.takeUntil((quit) => quit),
      Stream.runDrain
    )
  })

const interactive = (qmp: ShellSession) =>
  Effect.gen(function*() {
    const commands = yield* qmp.executeRaw("query-qmp-schema").pipe(
      Effect.map((reply) => describeCommands("return" in reply ? reply.return : [])),
      Effect.orElseSucceed(() => new Map<string, ReadonlyArray<ArgumentInfo>>())
    )
    const names = [...commands.keys()].sort()
    const completer: Readline.Completer = (line) => {
      const parts = line.split(/\s+/)
      const last = parts[parts.length - 1] ?? ""
      const candidates = parts.length <= 1
        ? names
        : (commands.get(parts[0]!) ?? []).map((a) => `${a.name}=`)
      const hits = candidates.filter((c) => c.startsWith(last))
      return [hits.length > 0 ? hits : candidates, last]
    }
    const input = yield* stdinLines(completer)
    const v = qmp.greeting.QMP.version.qemu
    if (input.terminal) {
      yield* Console.log(
        `QMP shell: QEMU ${v.major}.${v.minor}.${v.micro}; ${names.length} commands; \`help\`, \`help COMMAND\`, Tab completes; Ctrl-D quits`
      )
    }
    yield* qmp.events.pipe(
      Stream.runForEach((event) =>
        Effect.zipRight(Console.log(`<- ${event.event} ${JSON.stringify(event.data ?? {})}`), input.prompt)
      ),
      Effect.forkScoped
    )
    const help = (command: string | undefined): string => {
      if (command === undefined) return names.join("\n")
      const args = commands.get(command)
      if (args === undefined) return `no command ${command}`
      return args.length === 0
        ? `${command}: no arguments`
        : [`${command}:`, ...args.map((a) => `  ${a.name}${a.optional ? " (optional)" : ""}: ${a.type}`)].join("\n")
    }
    yield* input.prompt
    yield* input.lines.pipe(
      Stream.mapEffect((line) =>
        Effect.gen(function*() {
          const trimmed = line.trim()
          if (trimmed === "") return false
          if (trimmed === "help" || trimmed.startsWith("help ")) {
            yield* Console.log(help(trimmed.slice(5).trim() || undefined))
            return false
          }
          const parsed = parseCommandLine(trimmed)
          if (typeof parsed === "string") {
            yield* Console.log(`error: ${parsed}`)
            return false
          }
          const reply = yield* Effect.either(qmp.executeRaw(parsed.command, parsed.args))
          yield* Console.log(reply._tag === "Right" ? JSON.stringify(reply.right, null, 2) : `error: ${reply.left.message}`)
          return parsed.command === "quit" && reply._tag === "Right" && "return" in reply.right
        }).pipe(Effect.tap((quit) => quit ? Effect.void : input.prompt))
      ),
      Stream.takeUntil((quit) => quit),
      Stream.runDrain
    )
  })

/** The `shell` subcommand. */
export const run = (parsed: Parsed) =>
  Effect.gen(function*() {
    const onTraffic = yield* trafficLog(parsed.values.get("qmp-log"))
    const target = parsed.values.get("connect")
    const qmp = target !== undefined ? yield* connectTo(target, onTraffic) : yield* Effect.gen(function*() {
      const vm = yield* Machine.launch({
        binary: parsed.values.get("qemu")!,
        machineType: parsed.passthrough.length === 0 ? "none" : undefined,
        args: parsed.passthrough,
        qmp: { onTraffic }
      })
      yield* track(vm)
      const client = yield* vm.qmp
      return { greeting: client.greeting, executeRaw: client.executeRaw, events: client.events } satisfies ShellSession
    })
    yield* parsed.flags.has("json") ? jsonMode(qmp) : interactive(qmp)
  }).pipe(Effect.scoped)
