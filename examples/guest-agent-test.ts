/**
 * Unit-testing code that uses the guest agent, with no VM (docs/guest.md):
 * FakeGuestAgent speaks qemu-ga's protocol on a real socket. Compiled by
 * `npm run check`; test/unit/DocExamples.test.ts runs the same check.
 */
import { Effect } from "effect"
import { GuestAgent } from "../src/index.js" // from "qemu-machine" in your project
import * as FakeGuestAgent from "../src/testing/FakeGuestAgent.js" // "qemu-machine/testing/FakeGuestAgent"

// Code under test: depends on the GuestAgent service only.
export const kernelRelease = Effect.gen(function*() {
  const agent = yield* GuestAgent.GuestAgent
  const { exitCode, stdout } = yield* agent.exec("/bin/uname", ["-r"])
  return exitCode === 0 ? Buffer.from(stdout).toString().trim() : undefined
})

// In a test: a fake agent whose /bin/uname answers, and a client connected to it.
export const test = Effect.gen(function*() {
  const fake = yield* FakeGuestAgent.make({
    programs: { "/bin/uname": () => ({ exitCode: 0, stdout: "6.1.0-test\n" }) }
  })
  const agent = yield* GuestAgent.connect(fake.path)
  const release = yield* kernelRelease.pipe(Effect.provideService(GuestAgent.GuestAgent, agent))
  const received = yield* fake.received
  return { release, commands: received.map((r) => r.execute) }
}).pipe(Effect.scoped)
