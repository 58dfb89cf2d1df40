/**
 * Runs the benchmarks: `npm run bench` for all, `npm run bench -- qmp-rtt`
 * for one, `--short` for the quick form CI runs. Prints one JSON line each.
 */
import { Effect, Logger, LogLevel } from "effect"
import { all } from "./benches.js"

const argv = process.argv.slice(2)
const short = argv.includes("--short")
const names = argv.filter((a) => !a.startsWith("--"))
const unknown = names.filter((n) => !(n in all))
if (unknown.length > 0) {
  console.error(`unknown bench ${unknown.join(", ")}; known: ${Object.keys(all).join(", ")}`)
  process.exit(2)
}
const selected = names.length > 0 ? names : Object.keys(all)

Effect.runPromise(
  Effect.forEach(selected, (name) => all[name]!({ short }), { discard: true }).pipe(
    Logger.withMinimumLogLevel(LogLevel.Error)
  )
).catch((error) => {
  console.error(error)
  process.exit(1)
})
