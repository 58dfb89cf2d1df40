import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck, Schema } from "effect"
import { QMPProtocolError } from "../../src/Errors.js"
import { FrameDecoder } from "../../src/internal/framing.js"
import { classifyServerMessage, convertKeys, EventMessage, eventMatch, Greeting, SuccessReply } from "../../src/QmpProtocol.js"

const encoder = new TextEncoder()

const feed = (decoder: FrameDecoder, chunks: ReadonlyArray<Uint8Array | string>) => {
  const messages: Array<unknown> = []
  const errors: Array<QMPProtocolError> = []
  let fatal: QMPProtocolError | undefined
  for (const chunk of chunks) {
    fatal = decoder.push(typeof chunk === "string" ? encoder.encode(chunk) : chunk, {
      onMessage: (m) => messages.push(m),
      onError: (e) => errors.push(e)
    }) ?? fatal
  }
  return { messages, errors, fatal }
}

describe("FrameDecoder", () => {
  it("splits newline-separated messages, several in one chunk", () => {
    const { errors, messages } = feed(new FrameDecoder(), ['{"a":1}\n{"b":2}\r\n{"c":', "3}\n"])
    expect(messages).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }])
    expect(errors).toEqual([])
  })

  it("accepts pretty-printed JSON spread over lines and chunks", () => {
    const pretty = JSON.stringify({ return: { status: "running", list: [1, { x: "}" }] }, id: 4 }, null, 2)
    const { messages } = feed(new FrameDecoder(), [pretty.slice(0, 10), pretty.slice(10, 31), pretty.slice(31), "\n"])
    expect(messages).toEqual([{ return: { status: "running", list: [1, { x: "}" }] }, id: 4 }])
  })

  it("keeps braces and escaped quotes inside strings out of the nesting count", () => {
    const { messages } = feed(new FrameDecoder(), ['{"desc":"a \\"}{\\" b \\\\"}\n'])
    expect(messages).toEqual([{ desc: "a \"}{\" b \\" }])
  })

  it("decodes UTF-8 split across chunks", () => {
    const bytes = encoder.encode(JSON.stringify({ s: "héllo → 🖥" }) + "\n")
    const chunks = Array.from(bytes, (b) => Uint8Array.of(b))
    const { messages } = feed(new FrameDecoder(), chunks)
    expect(messages).toEqual([{ s: "héllo → 🖥" }])
  })

  it("reports garbage between messages and resynchronises on the next line", () => {
    const { errors, fatal, messages } = feed(new FrameDecoder(), ['{"a":1}\nthis is not json\n{"b":2}\n'])
    expect(messages).toEqual([{ a: 1 }, { b: 2 }])
    expect(fatal).toBeUndefined()
    expect(errors).toHaveLength(1)
    expect(errors[0]!.reason).toBe("Garbage")
    expect(errors[0]!.excerpt).toContain("this is not json")
  })

  it("reports an object that is not valid JSON and goes on", () => {
    const { errors, messages } = feed(new FrameDecoder(), ['{"a" 1}\n{"b":2}\n'])
    expect(messages).toEqual([{ b: 2 }])
    expect(errors.map((e) => e.reason)).toEqual(["Garbage"])
  })

  it("recovers from a message cut off before the next line's message", () => {
    const { errors, messages } = feed(new FrameDecoder(), ['{"return": {"a": [1\n{"return": "ok", "id": 2}\n'])
    expect(messages).toEqual([{ return: "ok", id: 2 }])
    expect(errors.map((e) => e.detail)).toEqual([expect.stringContaining("cut off")])
  })

  it("recovers from a message cut off inside a string", () => {
    const { errors, messages } = feed(new FrameDecoder(), ['{"return": "abc\n', '{"event": "X", "timestamp": {"seconds": 1, "microseconds": 2}}\n'])
    expect(messages).toEqual([{ event: "X", timestamp: { seconds: 1, microseconds: 2 } }])
    expect(errors).toHaveLength(1)
  })

  it("does not split pretty-printed messages whose nested objects start indented lines", () => {
    const pretty = JSON.stringify({ return: [{ a: 1 }, { b: { c: 2 } }], id: 1 }, null, 1)
    const { errors, messages } = feed(new FrameDecoder(), [pretty, "\n"])
    expect(errors).toEqual([])
    expect(messages).toEqual([{ return: [{ a: 1 }, { b: { c: 2 } }], id: 1 }])
  })

  it("fails fatally on a message over the cap and accepts nothing more", () => {
    const decoder = new FrameDecoder(1024)
    const big = `{"return":"${"x".repeat(2000)}"}\n`
    const { fatal, messages } = feed(decoder, [big.slice(0, 600), big.slice(600)])
    expect(messages).toEqual([])
    expect(fatal?.reason).toBe("Oversize")
    expect(fatal?.fatal).toBe(true)
    expect(feed(decoder, ['{"a":1}\n']).messages).toEqual([])
  })

  it("passes a 120 KB message under the default cap", () => {
    const value = { return: Array.from({ length: 3000 }, (_, i) => ({ name: `cmd-${i}`, "meta-type": "command" })) }
    const text = JSON.stringify(value) + "\n"
    expect(text.length).toBeGreaterThan(120_000)
    const chunks: Array<string> = []
    for (let i = 0; i < text.length; i += 65536) chunks.push(text.slice(i, i + 65536))
    const { fatal, messages } = feed(new FrameDecoder(), chunks)
    expect(fatal).toBeUndefined()
    expect(messages).toEqual([value])
  })

  it("reports a message cut off by the end of the stream", () => {
    const decoder = new FrameDecoder()
    feed(decoder, ['{"return": {"a"'])
    const errors: Array<QMPProtocolError> = []
    decoder.end({ onMessage: () => {}, onError: (e) => errors.push(e) })
    expect(errors).toHaveLength(1)
    expect(errors[0]!.detail).toContain("stream ended inside a message")
  })
})

describe("classifyServerMessage", () => {
  it("classifies greeting, replies and events and keeps unknown fields", () => {
    const greeting = classifyServerMessage({
      QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: "" }, capabilities: ["oob"] },
      extra: true
    })
    expect(greeting._tag === "Right" && greeting.right._tag).toBe("Greeting")
    expect(greeting._tag === "Right" && (greeting.right.message as Record<string, unknown>).extra).toBe(true)
    const ok = classifyServerMessage({ return: { status: "running" }, id: 1 })
    expect(ok._tag === "Right" && ok.right._tag).toBe("Reply")
    const err = classifyServerMessage({ error: { class: "GenericError", desc: "no" }, id: 2 })
    expect(err._tag === "Right" && err.right._tag).toBe("Reply")
    const event = classifyServerMessage({ event: "STOP", timestamp: { seconds: 1, microseconds: 2 }, extra: 1 })
    expect(event._tag === "Right" && event.right.message).toEqual({
      event: "STOP",
      timestamp: { seconds: 1, microseconds: 2 },
      extra: 1
    })
  })

  it("rejects wrong types with the field named", () => {
    const bad = classifyServerMessage({ event: 42, timestamp: { seconds: 1, microseconds: 2 } })
    expect(bad._tag).toBe("Left")
    expect(bad._tag === "Left" && bad.left.detail).toContain("event")
    const badError = classifyServerMessage({ error: { class: 1 }, id: 1 })
    expect(badError._tag).toBe("Left")
    expect(classifyServerMessage([1, 2])._tag).toBe("Left")
    expect(classifyServerMessage({ hello: 1 })._tag).toBe("Left")
  })
})

describe("eventMatch", () => {
  // The seed's own examples.
  it("follows the seed's documented examples", () => {
    expect(eventMatch({ foo: 1 }, null)).toBe(true)
    expect(eventMatch({ foo: { bar: 1 } }, { foo: null })).toBe(true)
    expect(eventMatch({ foo: 5 }, { foo: null })).toBe(true)
    expect(eventMatch({ foo: { bar: 1 } }, { foo: { abc: null } })).toBe(false)
    expect(eventMatch({ foo: { bar: 1, rab: 2 } }, { foo: { rab: 2 } })).toBe(true)
  })

  it("compares leaves strictly and does not match missing keys", () => {
    expect(eventMatch({ data: { reason: "guest-shutdown" } }, { data: { reason: "host-qmp-quit" } })).toBe(false)
    expect(eventMatch({ data: { n: 1 } }, { data: { n: "1" } })).toBe(false)
    expect(eventMatch({ data: 5 }, { data: { n: 1 } })).toBe(false)
    expect(eventMatch({}, { data: undefined })).toBe(false)
  })
})

describe("convertKeys", () => {
  it("turns underscores into dashes at the top level only", () => {
    expect(convertKeys({ node_name: "a", opts: { keep_me: 1 } })).toEqual({ "node-name": "a", opts: { keep_me: 1 } })
  })
})

describe("classifyServerMessage: replies without a decode", () => {
  it("gives every object with a `return` key exactly what decoding it with SuccessReply would", () => {
    const decode = Schema.decodeUnknownEither(SuccessReply, { onExcessProperty: "preserve", errors: "first" })
    const reply = FastCheck.record({
      return: FastCheck.jsonValue(),
      id: FastCheck.oneof(FastCheck.integer(), FastCheck.string(), FastCheck.jsonValue())
    }, { requiredKeys: ["return"] })
    // Not `__proto__`: JSON.parse makes it an own key, which the parsed object passed on keeps, while
    // Schema's decode assigns extra keys, making it the copy's prototype instead (a difference in the fast path's favour).
    const key = FastCheck.string().filter((k) => k !== "__proto__")
    const withExtras = FastCheck.tuple(reply, FastCheck.dictionary(key, FastCheck.jsonValue()))
      .map(([r, extra]) => ({ ...extra, ...r }))
    FastCheck.assert(FastCheck.property(withExtras, (json) => {
      const decoded = decode(json)
      const classified = classifyServerMessage(json)
      expect(Either.isRight(decoded)).toBe(true)
      expect(classified).toEqual(Either.right({ _tag: "Reply", message: Either.getOrUndefined(decoded) }))
    }), { numRuns: Number(process.env.PROPERTY_RUNS ?? 500) })
  })
})

describe("classifyServerMessage: events and greetings checked by hand", () => {
  const options = { onExcessProperty: "preserve", errors: "first" } as const
  // Not `__proto__`, for the reason given for replies above.
  const key = FastCheck.string().filter((k) => k !== "__proto__")
  const number = FastCheck.oneof(FastCheck.integer(), FastCheck.double({ noNaN: true, noDefaultInfinity: true }))
  /** A value of the right type, or any JSON value (mostly the wrong type). */
  const orAny = <A>(valid: FastCheck.Arbitrary<A>) => FastCheck.oneof(valid, valid, FastCheck.jsonValue())
  // Nor one nested where the schema copies an object (`data`, a `timestamp` or `QMP` of any JSON value):
  // `jsonValue()` can make an own `__proto__` key at any depth.
  const withExtras = (message: FastCheck.Arbitrary<Record<string, unknown>>) =>
    FastCheck.tuple(message, FastCheck.dictionary(key, FastCheck.jsonValue(), { maxKeys: 3 }))
      .map(([m, extra]) => ({ ...extra, ...m }))
      .filter((json) => !JSON.stringify(json).includes('"__proto__":'))
  /** The fast path agrees with the schema both ways: the same value when it decodes, a malformed message when not. */
  const agreesWith = (schema: typeof EventMessage | typeof Greeting, tag: "Event" | "Greeting") => (json: unknown) => {
    const decoded = Schema.decodeUnknownEither(schema as Schema.Schema<unknown>, options)(json)
    const classified = classifyServerMessage(json)
    if (Either.isRight(decoded)) expect(classified).toEqual(Either.right({ _tag: tag, message: decoded.right }))
    else expect(Either.isLeft(classified)).toBe(true)
  }

  it("an event is classified exactly as decoding it with EventMessage would", () => {
    const timestamp = FastCheck.record({ seconds: orAny(number), microseconds: orAny(number) }, { requiredKeys: [] })
    const event = FastCheck.record({
      event: orAny(FastCheck.string()),
      timestamp: orAny(timestamp),
      data: orAny(FastCheck.dictionary(key, FastCheck.jsonValue(), { maxKeys: 3 }))
    }, { requiredKeys: ["event"] })
    FastCheck.assert(
      FastCheck.property(withExtras(event), agreesWith(EventMessage, "Event")),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 500) }
    )
  })

  it("a greeting is classified exactly as decoding it with Greeting would", () => {
    const qemu = FastCheck.record({ major: orAny(number), minor: orAny(number), micro: orAny(number) }, { requiredKeys: [] })
    const version = FastCheck.record({ qemu: orAny(qemu), package: orAny(FastCheck.string()) }, { requiredKeys: [] })
    const capabilities = FastCheck.array(orAny(FastCheck.string()), { maxLength: 3 })
    const greeting = FastCheck.record({
      QMP: orAny(FastCheck.record({ version: orAny(version), capabilities: orAny(capabilities) }, { requiredKeys: [] }))
    })
    FastCheck.assert(
      FastCheck.property(withExtras(greeting), agreesWith(Greeting, "Greeting")),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 500) }
    )
  })

  it("QEMU's own greeting and SHUTDOWN event are taken as they are", () => {
    const greeting = JSON.parse(
      '{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}'
    )
    const event = JSON.parse(
      '{"timestamp": {"seconds": 1764241000, "microseconds": 5123}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}'
    )
    expect(classifyServerMessage(greeting)).toEqual(Either.right({ _tag: "Greeting", message: greeting }))
    expect(Either.getOrThrow(classifyServerMessage(greeting)).message).toBe(greeting)
    expect(Either.getOrThrow(classifyServerMessage(event)).message).toBe(event)
  })
})
