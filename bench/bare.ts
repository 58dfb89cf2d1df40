/**
 * The baseline the benchmarks compare against: a bare QMP client on
 * `node:net`/`child_process`, hand-framed, no Effect. Not part of the library.
 */
import * as ChildProcess from "node:child_process"
import type * as Net from "node:net"

export interface BareQemu {
  readonly child: ChildProcess.ChildProcess
  readonly qmp: Net.Socket
  readonly console: Net.Socket | undefined
  /** Sends a command; resolves with the reply. */
  readonly execute: (command: string, args?: Record<string, unknown>) => Promise<unknown>
  /** Resolves with the next event of this name. */
  readonly nextEvent: (name: string) => Promise<unknown>
  readonly quit: () => Promise<void>
}

export const bareArgs = (extra: ReadonlyArray<string> = [], withConsole = false): Array<string> => [
  "-display", "none", "-vga", "none",
  "-chardev", "socket,id=mon,fd=3", "-mon", "chardev=mon,mode=control",
  ...(withConsole ? ["-chardev", "socket,id=console,fd=4", "-serial", "chardev:console"] : []),
  ...extra
]

/**
 * Spawns QEMU, waits for the greeting and negotiates capabilities. With a
 * console, `onConsole` sees its bytes from the spawn on.
 */
export const launchBare = (
  extra: ReadonlyArray<string> = ["-machine", "none", "-nodefaults"],
  withConsole = false,
  onConsole?: (chunk: Buffer) => void
) =>
  new Promise<BareQemu>((resolve, reject) => {
    const child = ChildProcess.spawn("qemu-system-x86_64", bareArgs(extra, withConsole), {
      stdio: ["ignore", "ignore", "inherit", "pipe", ...(withConsole ? ["pipe" as const] : [])]
    })
    const qmp = child.stdio[3] as Net.Socket
    const console = withConsole ? child.stdio[4] as Net.Socket : undefined
    qmp.on("error", () => {})
    console?.on("error", () => {})
    if (onConsole !== undefined) console?.on("data", onConsole)
    let buffer = ""
    let id = 0
    let greeted = false
    const pending = new Map<number, (reply: unknown) => void>()
    const eventWaiters: Array<{ name: string; resolve: (e: unknown) => void }> = []
    const execute = (command: string, args?: Record<string, unknown>) =>
      new Promise<unknown>((res) => {
        const n = ++id
        pending.set(n, res)
        qmp.write(JSON.stringify(args === undefined ? { execute: command, id: n } : { execute: command, arguments: args, id: n }))
      })
    const bare: BareQemu = {
      child,
      qmp,
      console,
      execute,
      nextEvent: (name) => new Promise((res) => eventWaiters.push({ name, resolve: res })),
      quit: () =>
        new Promise<void>((res) => {
          child.once("exit", () => res())
          void execute("quit")
        })
    }
    qmp.on("data", (chunk: Buffer) => {
      buffer += chunk.toString("utf8")
      let nl: number
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        if (line.trim() === "") continue
        const message = JSON.parse(line) as Record<string, unknown>
        if (!greeted && "QMP" in message) {
          greeted = true
          void execute("qmp_capabilities").then(() => resolve(bare))
        } else if ("event" in message) {
          const index = eventWaiters.findIndex((w) => w.name === message.event)
          if (index >= 0) eventWaiters.splice(index, 1)[0]!.resolve(message)
        } else {
          const waiter = pending.get(message.id as number)
          pending.delete(message.id as number)
          waiter?.(message)
        }
      }
    })
    child.once("error", reject)
  })
