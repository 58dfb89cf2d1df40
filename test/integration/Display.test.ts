/**
 * Screenshots and keys on a real QEMU: a PNG of a `-vga std` display, the
 * typed error without one, and text typed through `send-key` arriving in
 * order with shift applied (long text whole: QEMU's input queue is never
 * overrun), read back by a boot sector that echoes the BIOS's keyboard input
 * to the serial console.
 */
import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as Display from "../../src/Display.js"
import * as Machine from "../../src/Machine.js"
import * as EchoGuest from "../../src/testing/EchoGuest.js"
import { describeQemu, leftovers, makeBaseDir, noneMachine } from "../helpers.js"

/** Width and height from a PNG's IHDR, after checking the signature. */
const pngSize = (bytes: Uint8Array) => {
  const buffer = Buffer.from(bytes)
  expect(buffer.subarray(0, 8).toString("hex")).toBe("89504e470d0a1a0a")
  expect(buffer.subarray(12, 16).toString("latin1")).toBe("IHDR")
  return { width: buffer.readUInt32BE(16), height: buffer.readUInt32BE(20) }
}

const keyboardGuest = (base: string) => {
  const image = NodePath.join(base, "keyboard.img")
  NodeFs.writeFileSync(image, EchoGuest.keyboardImage())
  return EchoGuest.keyboardMachineConfig(image, { baseTempDir: base })
}

/** The keyboard guest launched in a base dir of its own, once it reads keys. */
const readyKeyboardGuest = (name: string) =>
  Effect.gen(function*() {
    const base = makeBaseDir(name)
    const vm = yield* Machine.launch(keyboardGuest(base))
    const console = yield* vm.console
    yield* console.waitFor(EchoGuest.KEYBOARD_BANNER, { timeout: "30 seconds" })
    return { base, vm, console }
  })

describeQemu("screenshots and keys (real QEMU)", () => {
  it.scopedLive("typed text reaches the guest in order, shift included; a chord goes as one", () =>
    Effect.gen(function*() {
      const { console, vm } = yield* readyKeyboardGuest("keys")
      const text = "Hello, World! ~(a_b)+{c|d}:\"e\"<f>?@#$%^&*`'[]\\;=-/."
      yield* vm.sendKeys(text, { holdTime: 20 })
      yield* console.waitFor(text, { timeout: "60 seconds" })
      // shift-a as one chord types "A"; ret is a carriage return.
      yield* vm.sendKey("shift-a")
      yield* vm.sendKey("ret")
      yield* console.waitFor("A\r", { timeout: "10 seconds" })
      expect(yield* console.unconsumed).toBe("")
    }), 120_000)

  it.scopedLive("long text arrives whole, and sendKeys and sendKey return once QEMU has played the keys", () =>
    Effect.gen(function*() {
      const { console, vm } = yield* readyKeyboardGuest("keys-long")
      // 406 characters, 85 of them shifted: more than QEMU's input queue holds if sent without waiting
      // for it to play them (it drops the rest without a word).
      const text = "The Quick Brown Fox Jumps Over The Lazy Dog! 0123456789 (a_b) ".repeat(7).slice(0, 406)
      yield* vm.sendKeys(text, { holdTime: 5 })
      // Played by the time sendKeys returns: only the guest's echo is left to come.
      yield* console.waitFor(text, { timeout: "3 seconds" })
      // One chord at a time in a loop: each sendKey waits for its own, so the loop cannot overrun the queue either.
      for (let i = 0; i < 200; i++) yield* vm.sendKey(i % 2 === 0 ? "x" : "shift-y", { holdTime: 5 })
      yield* console.waitFor("xY".repeat(100), { timeout: "3 seconds" })
      expect(yield* console.unconsumed).toBe("")
    }), 120_000)

  it.scopedLive("nothing is sent when a character cannot be typed, or while the guest is paused", () =>
    Effect.gen(function*() {
      const { console, vm } = yield* readyKeyboardGuest("keys-bad")
      const error = yield* Effect.flip(vm.sendKeys("ok é no"))
      expect(error._tag).toBe("KeyUnmappable")
      expect((error as Display.KeyUnmappable).key).toBe("é")
      const badChord = yield* Effect.flip(vm.sendKey("ctrl-nosuchkey"))
      expect(badChord._tag).toBe("KeyUnmappable")
      // QEMU drops input while the guest is stopped: a typed error, not keys lost without a word.
      yield* vm.execute("stop")
      const paused = yield* Effect.flip(vm.sendKeys("lost", { holdTime: 10 }))
      expect(paused).toMatchObject({ _tag: "KeyboardUnavailable", status: "paused" })
      expect(yield* Effect.flip(vm.sendKey("ret"))).toMatchObject({ _tag: "KeyboardUnavailable" })
      yield* vm.execute("cont")
      yield* vm.sendKeys("z")
      yield* console.waitFor("z", { timeout: "10 seconds" })
      // Nothing of "ok " or "lost" arrived before the z.
      expect(yield* console.recent).not.toMatch(/ok|lost/)
    }), 60_000)

  it.scopedLive("a screenshot of a -vga std display is a PNG; the file is gone afterwards", () =>
    Effect.gen(function*() {
      const { base, vm } = yield* readyKeyboardGuest("shot")
      const png = yield* vm.screenshot()
      const { height, width } = pngSize(png)
      expect(width).toBeGreaterThanOrEqual(640)
      expect(height).toBeGreaterThanOrEqual(400)
      expect(NodeFs.readdirSync(vm.tempDir).filter((f) => f.startsWith("screenshot-"))).toEqual([])
      yield* vm.shutdown()
      expect(leftovers(base)).toEqual(["keyboard.img"])
    }), 60_000)

  it.scopedLive("without a display device: ScreenshotUnavailable saying what to configure", () =>
    Effect.gen(function*() {
      const base = makeBaseDir("shot-none")
      const vm = yield* Machine.launch(noneMachine(base))
      const error = yield* Effect.flip(vm.screenshot())
      expect(error._tag).toBe("ScreenshotUnavailable")
      expect(error.message).toContain('vga: "std"')
    }))
})
