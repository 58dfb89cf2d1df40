/**
 * The Linux guest benchmarks (`npm run bench -- guest`): boot → shell
 * prompt, boot → agent ready, console `run` round trip, agent round trips,
 * each against a hand-written baseline on `child_process`/`node:net` driving
 * the same guest in the same run. Needs the guest (`npm run guest:linux`).
 */
import { Effect } from "effect"
import * as ChildProcess from "node:child_process"
import type * as Net from "node:net"
import * as LinuxGuest from "../scripts/linux-guest.js"
import * as Machine from "../src/Machine.js"
import { buildArgs } from "../src/MachineConfig.js"
import * as ShellSession from "../src/ShellSession.js"
import type { BenchOptions } from "./benches.js"
import { median, round } from "./stats.js"

const PROMPT = /(?:^|\n)[^\n]*[#$] (?:\x1b\[6n)?/

interface Bare {
  readonly child: ChildProcess.ChildProcess
  readonly console: Net.Socket
  readonly agent: Net.Socket
  /** Resolves once the console's output since the call matches. */
  readonly waitConsole: (pattern: RegExp) => Promise<void>
  /** Sends one agent request and resolves with its answer line. */
  readonly agentRequest: (text: string | Buffer, accept: (line: string) => boolean) => Promise<string>
}

/** QEMU on the guest, console on fd 4 and the agent (ISA serial) on fd 5, monitor on fd 3. */
const bareGuest = (guest: LinuxGuest.LinuxGuest): Bare => {
  const config = LinuxGuest.machineConfig(guest, { agent: "isa-serial" })
  const args = buildArgs(config, {
    monitor: { _tag: "Fd", fd: 3 },
    console: { _tag: "Fd", fd: 4 },
    guestAgent: { _tag: "Fd", fd: 5 }
  })
  const child = ChildProcess.spawn("qemu-system-x86_64", [...args], { stdio: ["ignore", "ignore", "inherit", "pipe", "pipe", "pipe"] })
  const console = child.stdio[4] as Net.Socket
  const agent = (child.stdio as ReadonlyArray<unknown>)[5] as Net.Socket
  let text = ""
  let waiter: { pattern: RegExp; resolve: () => void } | undefined
  console.on("data", (chunk: Buffer) => {
    text += chunk.toString("latin1")
    if (waiter !== undefined && waiter.pattern.test(text)) {
      const w = waiter
      waiter = undefined
      text = ""
      w.resolve()
    }
  })
  let lines = ""
  let lineWaiter: { accept: (line: string) => boolean; resolve: (line: string) => void } | undefined
  agent.on("data", (chunk: Buffer) => {
    lines += chunk.toString("latin1")
    let nl: number
    while ((nl = lines.indexOf("\n")) >= 0) {
      const line = lines.slice(0, nl).replace(/^[^{]*/, "")
      lines = lines.slice(nl + 1)
      if (lineWaiter?.accept(line) === true) {
        const w = lineWaiter
        lineWaiter = undefined
        w.resolve(line)
      }
    }
  })
  return {
    child,
    console,
    agent,
    waitConsole: (pattern) =>
      new Promise((resolve) => {
        if (pattern.test(text)) {
          text = ""
          return resolve()
        }
        waiter = { pattern, resolve }
      }),
    agentRequest: (request, accept) =>
      new Promise((resolve) => {
        lineWaiter = { accept, resolve }
        agent.write(request)
      })
  }
}

/** The baseline's agent handshake: 0xFF and a delimited sync every 500 ms until answered. */
const bareSync = async (bare: Bare) => {
  for (let attempt = 1;; attempt++) {
    const id = 1_000 + attempt
    const answered = await Promise.race([
      bare.agentRequest(
        Buffer.concat([Buffer.of(0xff), Buffer.from(JSON.stringify({ execute: "guest-sync-delimited", arguments: { id } }))]),
        (line) => line.includes(`"return": ${id}`) || line.includes(`"return":${id}`)
      ).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500))
    ])
    if (answered) return
  }
}

const bareExec = async (bare: Bare, path: string) => {
  const started = await bare.agentRequest(JSON.stringify({ execute: "guest-exec", arguments: { path, "capture-output": true } }), (l) => l.includes("pid"))
  const pid = (JSON.parse(started) as { return: { pid: number } }).return.pid
  for (let delay = 2;; delay = Math.min(200, delay * 2)) {
    const status = await bare.agentRequest(JSON.stringify({ execute: "guest-exec-status", arguments: { pid } }), (l) => l.includes("exited"))
    if (status.includes('"exited": true') || status.includes('"exited":true')) return
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}

const stop = (bare: Bare) =>
  new Promise<void>((resolve) => {
    bare.child.once("exit", () => resolve())
    bare.child.kill("SIGKILL")
  })

const timed = async (f: () => Promise<unknown>) => {
  const t0 = performance.now()
  await f()
  return performance.now() - t0
}

/** Boot times and round trips, library against the baseline, machines booted alternately. */
export const guest = (options: BenchOptions) =>
  Effect.gen(function*() {
    const image = LinuxGuest.cached()
    if (image === undefined) {
      return yield* Effect.fail(new Error("the Linux guest is not built: npm run guest:linux"))
    }
    const boots = options.short ? 1 : 5
    const n = options.short ? 10 : 100
    const bare = { prompt: [] as Array<number>, agent: [] as Array<number>, run: [] as Array<number>, ping: [] as Array<number>, exec: [] as Array<number> }
    const lib = { prompt: [] as Array<number>, agent: [] as Array<number>, run: [] as Array<number>, ping: [] as Array<number>, exec: [] as Array<number> }
    for (let boot = 0; boot < boots; boot++) {
      // The baseline: boot, prompt (asked for with Enter, as the session does), agent, round trips.
      yield* Effect.promise(async () => {
        const t0 = performance.now()
        const b = bareGuest(image)
        await b.waitConsole(/guest: up/)
        b.console.write("\r")
        await b.waitConsole(PROMPT)
        bare.prompt.push(performance.now() - t0)
        await bareSync(b)
        bare.agent.push(performance.now() - t0)
        for (let i = 0; i < n; i++) {
          bare.run.push(await timed(async () => {
            // The line ShellSession.run sends: the command between two markers.
            const id = `b${String(i).padStart(11, "0")}`
            b.console.write(`printf '%s%s__\\n' __QM_S_ ${id}; {\ntrue\n}; printf '\\n%s%s_%d__\\n' __QM_E_ ${id} $?\r`)
            await b.waitConsole(new RegExp(`__QM_E_${id}_0__[\\s\\S]*${PROMPT.source}`))
          }))
          bare.ping.push(await timed(() => b.agentRequest(JSON.stringify({ execute: "guest-ping", id: i }), (l) => l.includes("return"))))
          bare.exec.push(await timed(() => bareExec(b, "/bin/true")))
        }
        await stop(b)
      })
      yield* Effect.scoped(Effect.gen(function*() {
        const t0 = performance.now()
        const vm = yield* Machine.launch(LinuxGuest.machineConfig(image, { agent: "isa-serial" }, { dieWithParent: false }))
        const console = yield* vm.console
        yield* console.waitFor("guest: up", { timeout: "120 seconds" })
        const shell = yield* ShellSession.make(console)
        lib.prompt.push(performance.now() - t0)
        const agent = yield* vm.guestAgent
        yield* agent.sync({ timeout: "120 seconds" })
        lib.agent.push(performance.now() - t0)
        const time = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.gen(function*() {
            const t = performance.now()
            yield* effect
            return performance.now() - t
          })
        for (let i = 0; i < n; i++) {
          lib.run.push(yield* time(shell.run("true")))
          lib.ping.push(yield* time(agent.ping()))
          lib.exec.push(yield* time(agent.exec("/bin/true")))
        }
        yield* vm.kill
      }))
    }
    const summary = (times: typeof lib) => ({
      boot_to_prompt_ms: round(median(times.prompt)),
      boot_to_agent_ms: round(median(times.agent)),
      console_run_ms: round(median(times.run)),
      agent_ping_ms: round(median(times.ping), 3),
      agent_exec_ms: round(median(times.exec))
    })
    const l = summary(lib)
    const b = summary(bare)
    console.log(JSON.stringify({
      bench: "guest",
      boots,
      round_trips: n,
      library: l,
      baseline: b,
      ratio: Object.fromEntries(Object.entries(l).map(([k, v]) => [k, round(v / b[k as keyof typeof b])])),
      note: "TCG unless QEMU's default picks otherwise; agent on ISA serial; boot times include QEMU start and the kernel"
    }))
  })
