/**
 * Typing on the guest's keyboard and taking a screenshot (docs/devices.md),
 * on the keyboard boot sector that ships with the library: it echoes every
 * key the BIOS reads to the serial console. Run: npx tsx examples/keys-and-screenshot.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { Machine } from "../src/index.js" // from "qemu-machine" in your project
import * as EchoGuest from "../src/testing/EchoGuest.js" // "qemu-machine/testing/EchoGuest"

const program = Effect.gen(function*() {
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "keys-example-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true })))
  const image = NodePath.join(dir, "keyboard.img")
  NodeFs.writeFileSync(image, EchoGuest.keyboardImage())

  // vga: "std" gives the machine a display (QEMU still shows no window).
  const vm = yield* Machine.launch(EchoGuest.keyboardMachineConfig(image))
  const console = yield* vm.console
  yield* console.waitFor(EchoGuest.KEYBOARD_BANNER)

  // US layout, shift where needed, in order; returns once QEMU has played the keys.
  yield* vm.sendKeys("Hello, World!", { holdTime: 20 })
  yield* console.waitFor("Hello, World!", { timeout: "10 seconds" })
  yield* vm.sendKey("shift-a") // one chord: "A"

  const png = yield* vm.screenshot()
  const file = NodePath.join(NodeOs.tmpdir(), "qemu-machine-example.png")
  NodeFs.writeFileSync(file, png)
  yield* Console.log(`typed and echoed; screenshot: ${png.length} bytes in ${file}`)
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)
