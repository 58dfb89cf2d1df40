/**
 * The shape of `src/` (issue 15): no import cycle (type imports included),
 * and no hand-written module over 400 lines.
 */
import { expect, it } from "@effect/vitest"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"

const src = NodePath.join(__dirname, "../../src")
const modules = (NodeFs.readdirSync(src, { recursive: true }) as Array<string>)
  .filter((file) => file.endsWith(".ts"))
  .map((file) => NodePath.join(src, file))

const importsOf = (file: string): Array<string> =>
  [...NodeFs.readFileSync(file, "utf8").matchAll(/(?:import|export)[^"']*?from\s+["'](\.[^"']+)["']/g)]
    .map((m) => NodePath.normalize(NodePath.join(NodePath.dirname(file), m[1]!.replace(/\.js$/, ".ts"))))

it("no module imports back into one that imports it, type imports included", () => {
  const cycles: Array<string> = []
  const state = new Map<string, "open" | "done">()
  const visit = (file: string, stack: Array<string>) => {
    state.set(file, "open")
    stack.push(file)
    for (const next of importsOf(file)) {
      if (state.get(next) === "open") cycles.push([...stack.slice(stack.indexOf(next)), next].map((f) => NodePath.relative(src, f)).join(" -> "))
      else if (!state.has(next)) visit(next, stack)
    }
    stack.pop()
    state.set(file, "done")
  }
  for (const file of modules) if (!state.has(file)) visit(file, [])
  expect(cycles).toEqual([])
})

it("every hand-written module has at most 400 lines", () => {
  const long = modules
    .filter((file) => !file.includes(`${NodePath.sep}generated${NodePath.sep}`))
    .map((file) => [NodePath.relative(src, file), NodeFs.readFileSync(file, "utf8").split("\n").length - 1] as const)
    .filter(([, lines]) => lines > 400)
  expect(long).toEqual([])
})
