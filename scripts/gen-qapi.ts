/**
 * `npm run gen:qapi`: writes `src/generated/qapi.ts` from the saved schema
 * `qapi/qmp-schema.json`.
 *
 *   npm run gen:qapi                    regenerate from the fixture
 *   npm run gen:qapi -- --check         fail if the generated file is not what the fixture gives
 *   npm run gen:qapi -- --refresh [--qemu BIN]
 *                                       save the installed QEMU's schema as the fixture first
 *                                       (from `-machine none`), then regenerate
 */
import { Effect, Schema } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as Machine from "../src/Machine.js"
import { Fixture, formatFixture, generate } from "./qapiCodegen.js"

const root = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..")
const FIXTURE_PATH = NodePath.join(root, "qapi", "qmp-schema.json")
const GENERATED_PATH = NodePath.join(root, "src", "generated", "qapi.ts")

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(name)
const option = (name: string) => {
  const at = argv.indexOf(name)
  return at >= 0 ? argv[at + 1] : undefined
}

const refresh = (binary: string) =>
  Effect.scoped(Effect.gen(function*() {
    const vm = yield* Machine.launch({ binary, machineType: "none", args: ["-nodefaults"] })
    const version = yield* vm.execute("query-version")
    const schema = yield* vm.execute("query-qmp-schema")
    const qemu = version.qemu
    const fixture = {
      source: {
        binary: NodePath.basename(binary),
        version: `${qemu.major}.${qemu.minor}.${qemu.micro}`,
        package: version.package,
        machine: "none"
      },
      schema
    }
    // Validate, but save what QEMU sent: the raw hash covers it as is.
    yield* Schema.decodeUnknown(Fixture)(fixture)
    NodeFs.writeFileSync(FIXTURE_PATH, formatFixture(fixture))
    console.log(`saved ${fixture.schema.length} schema entries of QEMU ${fixture.source.version} to ${FIXTURE_PATH}`)
  }))

const main = Effect.gen(function*() {
  if (flag("--refresh")) yield* refresh(option("--qemu") ?? "qemu-system-x86_64")
  const code = generate(JSON.parse(NodeFs.readFileSync(FIXTURE_PATH, "utf8")))
  if (flag("--check")) {
    const current = NodeFs.existsSync(GENERATED_PATH) ? NodeFs.readFileSync(GENERATED_PATH, "utf8") : ""
    if (current !== code) {
      console.error(`${GENERATED_PATH} is not what ${FIXTURE_PATH} generates: run npm run gen:qapi`)
      process.exitCode = 1
    } else {
      console.log(`${NodePath.relative(root, GENERATED_PATH)} is up to date (${code.length} bytes)`)
    }
    return
  }
  NodeFs.mkdirSync(NodePath.dirname(GENERATED_PATH), { recursive: true })
  NodeFs.writeFileSync(GENERATED_PATH, code)
  console.log(`wrote ${NodePath.relative(root, GENERATED_PATH)}: ${code.split("\n").length} lines`)
})

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exitCode = 1
})
