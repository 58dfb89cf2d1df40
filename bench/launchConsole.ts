/**
 * The demo's guest with its console (issue 17's rows "launch pc + console"
 * and "spawn → SeaBIOS banner on the console, 0 bytes lost"): SeaBIOS with
 * no disk and no NIC, its serial console on a socket pair. Per round, from
 * the launch's start: QMP ready, SeaBIOS's banner seen on the console, and
 * the console's text up to "No bootable device", which must be the bare
 * client's to the byte. Rounds alternate which side goes first.
 */
import { Effect } from "effect"
import * as Machine from "../src/Machine.js"
import { launchBare } from "./bare.js"
import type { BenchOptions } from "./benches.js"
import { median, report, round } from "./stats.js"

const BANNER = "SeaBIOS"
const END = "No bootable device"
const guestArgs = ["-nic", "none", "-m", "64"]

interface Side {
  readonly ready: Array<number>
  readonly banner: Array<number>
  readonly texts: Array<string>
}

/** The console's text up to and including the end marker (the rest depends on when the reader stopped). */
const upToEnd = (text: string) => text.slice(0, text.indexOf(END) + END.length)

export const launchConsole = (options: BenchOptions) =>
  Effect.gen(function*() {
    const n = options.short ? 3 : 40
    const bare: Side = { ready: [], banner: [], texts: [] }
    const lib: Side = { ready: [], banner: [], texts: [] }

    const bareRound = Effect.promise(async () => {
      let text = ""
      let banner = 0
      let resolveEnd = () => {}
      const ended = new Promise<void>((resolve) => (resolveEnd = resolve))
      const t0 = performance.now()
      const qemu = await launchBare(["-machine", "pc,graphics=off", ...guestArgs], true, (chunk) => {
        text += chunk.toString("latin1")
        if (banner === 0 && text.includes(BANNER)) banner = performance.now()
        if (text.includes(END)) resolveEnd()
      })
      const ready = performance.now()
      await ended
      bare.ready.push(ready - t0)
      bare.banner.push(banner - t0)
      bare.texts.push(upToEnd(text))
      qemu.console!.destroy()
      await qemu.quit()
    })

    const libRound = Effect.scoped(Effect.gen(function*() {
      const t0 = performance.now()
      const vm = yield* Machine.launch({ machineType: "pc,graphics=off", args: guestArgs, console: {}, dieWithParent: false })
      const ready = performance.now()
      const console = yield* vm.console
      yield* console.waitFor(BANNER, { timeout: "30 seconds" })
      const banner = performance.now()
      yield* console.waitFor(END, { timeout: "30 seconds" })
      lib.ready.push(ready - t0)
      lib.banner.push(banner - t0)
      lib.texts.push(upToEnd(yield* console.recent))
    }))

    for (let i = 0; i < n; i++) {
      yield* i % 2 === 0 ? Effect.zipRight(bareRound, libRound) : Effect.zipRight(libRound, bareRound)
    }
    const paired = (a: ReadonlyArray<number>, b: ReadonlyArray<number>) => round(median(a.map((x, i) => x - b[i]!)))
    const figures = (side: Side) => ({ ready_ms: round(median(side.ready)), banner_ms: round(median(side.banner)) })
    const mismatched = lib.texts.filter((text, i) => text !== bare.texts[i]).length
    yield* report({
      bench: "launch-console",
      launches: n,
      library: figures(lib),
      baseline: figures(bare),
      overhead_ms: { ready: paired(lib.ready, bare.ready), banner: paired(lib.banner, bare.banner) },
      console: { bytes_to_end: bare.texts[0]?.length ?? 0, rounds_differing_from_bare: mismatched },
      target: { ready: "<= Python (issue 17)", banner: "<= Python, 0 bytes lost (issue 17)" },
      note: "library without the setpriv wrapper, as the baseline; the console's text is compared up to \"No bootable device\""
    })
  })
