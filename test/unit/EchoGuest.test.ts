import { describe, expect, it } from "@effect/vitest"
import { execFileSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as EchoGuest from "../../src/testing/EchoGuest.js"

const hasNasm = (() => {
  try {
    execFileSync("nasm", ["-v"])
    return true
  } catch {
    return false
  }
})()

describe("echo guest", () => {
  it("is a bootable 512-byte sector", () => {
    const image = EchoGuest.image()
    expect(image.length).toBe(512)
    expect([image[510], image[511]]).toEqual([0x55, 0xaa])
  })

  it.skipIf(!hasNasm)("matches what nasm assembles from the source", () => {
    const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "nasm-"))
    try {
      const out = NodePath.join(dir, "guest.bin")
      execFileSync("nasm", ["-f", "bin", "-o", out, NodePath.join(__dirname, "../../src/testing/echo-guest.asm")])
      expect(Buffer.from(NodeFs.readFileSync(out)).equals(Buffer.from(EchoGuest.image()))).toBe(true)
    } finally {
      NodeFs.rmSync(dir, { recursive: true })
    }
  })
})
