/**
 * A fake QEMU guest agent for unit tests of code that uses `GuestAgent`: it
 * speaks qemu-ga's protocol over a real unix socket (the 0xFF parser reset,
 * `guest-sync-delimited`, answers with the request's id), keeps an
 * in-memory file system for the `guest-file-*` commands, runs `programs`
 * for `guest-exec`, and can misbehave: not yet running (input dropped, as
 * behind an unopened serial port), silent, or writing raw bytes.
 *
 * ```ts
 * const fake = yield* FakeGuestAgent.make({
 *   programs: { "/bin/uname": () => ({ exitCode: 0, stdout: "6.1.0\n" }) }
 * })
 * const agent = yield* GuestAgent.connect(fake.path)
 * const { stdout } = yield* agent.exec("/bin/uname", ["-r"])
 * ```
 *
 * @module
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { commands as qgaCommands } from "../generated/qga.js"
import { FrameDecoder } from "../internal/framing.js"
import { withNodeDefaults } from "../internal/platform.js"
import * as Transport from "../internal/transport.js"

/** What a fake program does with its arguments and input. */
export type FakeProgram = (args: ReadonlyArray<string>, input: Uint8Array) => {
  readonly exitCode: number
  readonly stdout?: string | Uint8Array | undefined
  readonly stderr?: string | Uint8Array | undefined
}

/** A command handler's answer: a result, an error, or nothing (the agent stays silent). */
export type FakeAnswer =
  | { readonly _tag: "Return"; readonly value: unknown }
  | { readonly _tag: "Error"; readonly class: string; readonly desc: string }
  | { readonly _tag: "Silent" }

/** A command's result. */
export const answer = (value: unknown = {}): FakeAnswer => ({ _tag: "Return", value })
/** A command's error. */
export const fail = (desc: string, errorClass = "GenericError"): FakeAnswer => ({ _tag: "Error", class: errorClass, desc })
/** No answer at all. */
export const silent: FakeAnswer = { _tag: "Silent" }

/** How the fake agent behaves. */
export interface FakeGuestAgentScript {
  /** Programs `guest-exec` can run, by path; any other path fails as qemu-ga does. */
  readonly programs?: Readonly<Record<string, FakeProgram>> | undefined
  /** Files present at the start. */
  readonly files?: Readonly<Record<string, string | Uint8Array>> | undefined
  /** Handlers that replace the built-in ones, by command name. */
  readonly commands?: Readonly<Record<string, (args: Record<string, unknown>) => FakeAnswer>> | undefined
  /** False: not running yet, what arrives is dropped until `setRunning(true)`. Default true. */
  readonly running?: boolean | undefined
  /** How many `guest-exec-status` polls a program stays running before it exits. Default 0. */
  readonly execPolls?: number | undefined
}

/** Control over a fake agent. */
export interface FakeGuestAgentService {
  /** The unix socket it listens on. */
  readonly path: string
  /** The commands received (syncs included), in order. */
  readonly received: Effect.Effect<ReadonlyArray<{ readonly execute: string; readonly arguments?: unknown }>>
  /** Waits until `count` (default 1) requests of `command` have been received in all. */
  readonly awaitReceived: (command: string, count?: number) => Effect.Effect<void>
  /** Starts or stops the agent: stopped, it drops what arrives (the bytes of a half-sent request too). */
  readonly setRunning: (running: boolean) => Effect.Effect<void>
  /** The in-memory file system. */
  readonly files: Effect.Effect<ReadonlyMap<string, Uint8Array>>
  /** Writes raw bytes to the client. */
  readonly sendRaw: (data: string | Uint8Array) => Effect.Effect<void>
}

const bytesOf = (data: string | Uint8Array | undefined) => Buffer.from(data ?? "")

/** Starts a fake agent on a unix socket in a private temporary directory; connections are served one after another. */
export const make = (script: FakeGuestAgentScript = {}): Effect.Effect<FakeGuestAgentService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped({ directory: NodeOs.tmpdir(), prefix: "fake-qga-" }).pipe(Effect.orDie)
    const path = NodePath.join(dir, "qga.sock")
    const listener = yield* Transport.listen({ path }).pipe(Effect.orDie)
    const files = new Map(Object.entries(script.files ?? {}).map(([name, data]) => [name, bytesOf(data)]))
    const received: Array<{ execute: string; arguments?: unknown }> = []
    let running = script.running !== false
    let current: Transport.ByteTransport | undefined
    const handles = new Map<number, { path: string; position: number }>()
    const processes = new Map<number, { polls: number; status: Record<string, unknown> }>()
    let nextHandle = 1000
    const waiters = new Set<{ command: string; count: number; done: Deferred.Deferred<void> }>()
    const countOf = (command: string) => received.filter((r) => r.execute === command).length
    const notify = () => {
      for (const waiter of waiters) {
        if (countOf(waiter.command) >= waiter.count) {
          waiters.delete(waiter)
          Deferred.unsafeDone(waiter.done, Effect.void)
        }
      }
    }

    const handle = (args: Record<string, unknown>) => handles.get(Number(args.handle))
    const builtins: Record<string, (args: Record<string, unknown>) => FakeAnswer> = {
      "guest-sync-delimited": (args) => answer(args.id),
      "guest-sync": (args) => answer(args.id),
      "guest-ping": () => answer(),
      "guest-info": () =>
        answer({
          version: "7.2.0-fake",
          supported_commands: qgaCommands.map((c) => ({ name: c.name, enabled: true, "success-response": c.successResponse }))
        }),
      "guest-shutdown": () => silent,
      "guest-file-open": (args) => {
        const name = String(args.path)
        const mode = String(args.mode ?? "r")
        if (mode.startsWith("r") && !files.has(name)) {
          return fail(`failed to open file '${name}' (mode: '${mode}'): No such file or directory`)
        }
        if (mode.startsWith("w")) files.set(name, Buffer.alloc(0))
        handles.set(++nextHandle, { path: name, position: 0 })
        return answer(nextHandle)
      },
      "guest-file-read": (args) => {
        const open = handle(args)
        if (open === undefined) return fail(`handle '${String(args.handle)}' has not been found`)
        const data = files.get(open.path) ?? Buffer.alloc(0)
        const part = data.subarray(open.position, open.position + Number(args.count ?? 4096))
        open.position += part.length
        return answer({ count: part.length, "buf-b64": part.toString("base64"), eof: open.position >= data.length })
      },
      "guest-file-write": (args) => {
        const open = handle(args)
        if (open === undefined) return fail(`handle '${String(args.handle)}' has not been found`)
        const part = Buffer.from(String(args["buf-b64"]), "base64")
        files.set(open.path, Buffer.concat([files.get(open.path) ?? Buffer.alloc(0), part]))
        return answer({ count: part.length, eof: false })
      },
      "guest-file-flush": (args) => handle(args) === undefined ? fail("handle has not been found") : answer(),
      "guest-file-close": (args) => handles.delete(Number(args.handle)) ? answer() : fail("handle has not been found"),
      "guest-exec": (args) => {
        const program = script.programs?.[String(args.path)]
        if (program === undefined) return fail(`Guest agent command failed, error was 'Failed to execute child process “${String(args.path)}” (No such file or directory)'`)
        const result = program((args.arg as ReadonlyArray<string> | undefined) ?? [], Buffer.from(String(args["input-data"] ?? ""), "base64"))
        const pid = 100 + processes.size
        const capture = args["capture-output"] === true
        processes.set(pid, {
          polls: script.execPolls ?? 0,
          status: {
            exited: true,
            exitcode: result.exitCode,
            ...(capture ? { "out-data": bytesOf(result.stdout).toString("base64"), "err-data": bytesOf(result.stderr).toString("base64") } : {})
          }
        })
        return answer({ pid })
      },
      "guest-exec-status": (args) => {
        const process = processes.get(Number(args.pid))
        if (process === undefined) return fail(`Invalid parameter 'pid'`)
        if (process.polls-- > 0) return answer({ exited: false })
        processes.delete(Number(args.pid))
        return answer(process.status)
      },
      ...script.commands
    }

    const serve = (transport: Transport.ByteTransport) =>
      Effect.gen(function*() {
        current = transport
        let decoder = new FrameDecoder()
        const onMessage = (json: unknown) => {
          if (json === null || typeof json !== "object" || !("execute" in json)) return
          const request = json as { execute: string; arguments?: Record<string, unknown>; id?: unknown }
          received.push(
            request.arguments === undefined
              ? { execute: request.execute }
              : { execute: request.execute, arguments: request.arguments }
          )
          notify()
          const handler = builtins[request.execute]
          const result = handler === undefined
            ? fail(`The command ${request.execute} has not been found`, "CommandNotFound")
            : handler(request.arguments ?? {})
          if (result._tag === "Silent") return
          const body = result._tag === "Return" ? { return: result.value } : { error: { class: result.class, desc: result.desc } }
          const line = `${JSON.stringify(request.id === undefined ? body : { ...body, id: request.id })}\n`
          // The answer to a delimited sync comes after a 0xFF of its own.
          transport.unsafeWrite(request.execute === "guest-sync-delimited" ? Buffer.concat([Buffer.of(0xff), Buffer.from(line)]) : line)
        }
        const sink = { onMessage, onError: () => {} }
        yield* transport.run((chunk) => {
          if (!running) return
          let start = 0
          for (let i = chunk.indexOf(0xff); i >= 0; i = chunk.indexOf(0xff, start)) {
            decoder.push(chunk.subarray(start, i), sink)
            // qemu-ga's parser starts afresh at a 0xFF: a half-received request is dropped.
            decoder = new FrameDecoder()
            start = i + 1
          }
          decoder.push(chunk.subarray(start), sink)
        })
        if (current === transport) current = undefined
      }).pipe(Effect.scoped)

    yield* listener.accept(Duration.infinity).pipe(Effect.flatMap(serve), Effect.scoped, Effect.forever, Effect.forkScoped)

    return {
      path,
      received: Effect.sync(() => received.slice()),
      awaitReceived: (command, count = 1) =>
        Effect.flatMap(Deferred.make<void>(), (done) =>
          Effect.suspend(() => {
            waiters.add({ command, count, done })
            notify()
            return Deferred.await(done)
          })),
      setRunning: (value) => Effect.sync(() => void (running = value)),
      files: Effect.sync(() => new Map(files)),
      sendRaw: (data) => Effect.suspend(() => current === undefined ? Effect.void : Effect.ignore(current.write(data)))
    } satisfies FakeGuestAgentService
  }).pipe(withNodeDefaults)
