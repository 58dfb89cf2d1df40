/**
 * The SCM_RIGHTS send beside libuv: it must wait for Node's write queue, so
 * its bytes never overtake earlier writes, and it must wait out a full socket.
 */
import { expect, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as NodeFs from "node:fs"
import * as Net from "node:net"
import * as NodePath from "node:path"
import * as FdPassing from "../../src/internal/fdPassing.js"
import { makeBaseDir } from "../helpers.js"

/** A connected unix socket pair whose server side starts paused (reads nothing). */
const pausedPair = Effect.acquireRelease(
  Effect.async<{ client: Net.Socket; server: Net.Socket; listener: Net.Server }>((resume) => {
    const path = NodePath.join(makeBaseDir("fdpass"), "s.sock")
    const listener = Net.createServer({ pauseOnConnect: true })
    listener.listen(path, () => {
      const client = Net.connect(path)
      listener.once("connection", (server) => resume(Effect.succeed({ client, server, listener })))
    })
  }),
  ({ client, listener, server }) =>
    Effect.sync(() => {
      client.destroy()
      server.destroy()
      listener.close()
    })
)

// Live clock: the send polls Node's queue with real sleeps.
it.live("waits for earlier writes and a full socket, then sends in order", () =>
  Effect.gen(function*() {
    const { client, server } = yield* pausedPair
    // More than the socket buffers hold: Node keeps the rest queued.
    const bulk = Buffer.alloc(8 * 1024 * 1024, "a".charCodeAt(0))
    client.write(bulk)
    expect(client.writableLength).toBeGreaterThan(0)
    const fd = NodeFs.openSync("/etc/hostname", "r")
    const sending = yield* Effect.fork(FdPassing.send(client, "{\"execute\":\"getfd\"}", [fd]))
    // A negative check (nothing sent yet) has no condition to wait on: give the send 50 ms to go wrong.
    yield* Effect.sleep("50 millis")
    // Still waiting: the peer has read nothing.
    expect(sending.unsafePoll()).toBeNull()
    const received: Array<Buffer> = []
    let total = 0
    const done = new Promise<void>((resolve) =>
      server.on("data", (chunk: Buffer) => {
        received.push(chunk)
        total += chunk.length
        if (total >= bulk.length + 19) resolve()
      })
    )
    server.resume()
    yield* Fiber.join(sending)
    yield* Effect.promise(() => done)
    NodeFs.closeSync(fd)
    const all = Buffer.concat(received)
    expect(all.length).toBe(bulk.length + 19)
    expect(all.subarray(0, bulk.length).every((byte) => byte === 0x61)).toBe(true)
    expect(all.subarray(bulk.length).toString()).toBe("{\"execute\":\"getfd\"}")
  }).pipe(Effect.scoped), { timeout: 20_000 })

it.effect("a TCP socket is Unsupported, a destroyed one is closed", () =>
  Effect.gen(function*() {
    const tcp = new Net.Socket()
    const error = yield* Effect.flip(FdPassing.send(tcp, " ", [0]))
    expect(error).toMatchObject({ _tag: "FdPassingError", reason: "Unsupported" })
    tcp.destroy()
    expect(yield* Effect.flip(FdPassing.send(tcp, " ", [0]))).toMatchObject({ _tag: "TransportClosed" })
  }))

it.scoped("more than 16 descriptors in one message is a typed error, not a crash", () =>
  Effect.gen(function*() {
    const { client } = yield* pausedPair
    const error = yield* Effect.flip(FdPassing.send(client, " ", Array.from({ length: 17 }, () => 0)))
    expect(error).toMatchObject({ _tag: "FdPassingError", reason: "Send" })
    expect(error).toMatchObject({ detail: "one message carries 1 to 16 descriptors, not 17" })
  }))
