import { describe, expect, it } from "@effect/vitest"
import { TextBuffer } from "../../src/internal/textBuffer.js"

describe("TextBuffer", () => {
  it("keeps everything under the limit, in order", () => {
    const buffer = new TextBuffer(100_000)
    let expected = ""
    for (let i = 0; i < 5000; i++) {
      buffer.append(`${i},`)
      expected += `${i},`
    }
    expect(buffer.toString()).toBe(expected)
    expect(buffer.tail(6)).toBe(expected.slice(-6))
  })

  it("drops from the front past the limit and stays within two pieces of it", () => {
    const buffer = new TextBuffer(10_000)
    let expected = ""
    for (let i = 0; i < 100_000; i++) {
      buffer.append(String(i % 10))
      expected += String(i % 10)
      expect(buffer.length).toBeLessThanOrEqual(10_000 + 2 * 4096)
    }
    const text = buffer.toString()
    expect(text.length).toBeGreaterThanOrEqual(10_000 - 4096)
    expect(expected.endsWith(text)).toBe(true)
  })

  it("from(position): the content from there on, at every position, in whole pieces, the open one, and past the end", () => {
    const buffer = new TextBuffer(1_000_000)
    let expected = ""
    // Several whole pieces (4096 characters each) and an open one, then once more after a join.
    for (let i = 0; expected.length < 3 * 4096 + 1000; i++) {
      buffer.append(`line ${i}\n`)
      expected += `line ${i}\n`
    }
    const check = () => {
      for (const position of [0, 1, 4095, 4096, 4097, 8192, expected.length - 1, expected.length, expected.length + 5]) {
        expect(buffer.from(position)).toBe(expected.slice(position))
      }
    }
    check()
    expect(buffer.toString()).toBe(expected)
    buffer.append("tail")
    expected += "tail"
    check()
    buffer.dropFront(100)
    expected = expected.slice(100)
    check()
  })

  it("drops a consumed prefix", () => {
    const buffer = new TextBuffer(1000)
    buffer.append("hello ")
    buffer.append("world")
    buffer.dropFront(6)
    expect(buffer.toString()).toBe("world")
    buffer.append("!")
    expect(buffer.toString()).toBe("world!")
  })
})
