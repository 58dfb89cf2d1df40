// The examples shown in docs/ are the files in examples/ (compiled by `npm run check`),
// and the one that needs no VM runs here.
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { test as guestAgentTest } from "../../examples/guest-agent-test.js"
import * as DocExamples from "../../scripts/doc-examples.js"

const root = NodePath.resolve(import.meta.dirname, "../..")

describe("docs' examples", () => {
  const docs = NodeFs.readdirSync(NodePath.join(root, "docs")).filter((f) => f.endsWith(".md"))
  const shown = docs.flatMap((doc) => {
    const text = NodeFs.readFileSync(NodePath.join(root, "docs", doc), "utf8")
    return [...text.matchAll(/<!-- example: (\S+) -->\n\n```ts\n([\s\S]*?)\n```/g)].map((m) => ({
      doc,
      file: m[1]!,
      block: m[2]!
    }))
  })

  it("docs/guest.md shows its three examples", () => {
    expect(shown.filter((s) => s.doc === "guest.md").map((s) => s.file)).toEqual([
      "examples/guest-shell.ts",
      "examples/guest-agent.ts",
      "examples/guest-agent-test.ts"
    ])
  })

  it("docs/devices.md shows its seven examples", () => {
    expect(shown.filter((s) => s.doc === "devices.md").map((s) => s.file)).toEqual([
      "examples/attach.ts",
      "examples/keys-and-screenshot.ts",
      "examples/port-forward.ts",
      "examples/jobs-and-migration.ts",
      "examples/flight-record.ts",
      "examples/fake-qmp-generated.ts",
      "examples/kvm.ts"
    ])
  })

  it("each example shown is its file, verbatim (npm run docs:examples rewrites them)", () => {
    for (const doc of DocExamples.docs()) expect(doc.text, doc.path).toBe(DocExamples.synced(doc.text))
  })

  it.scopedLive("the guest agent unit-test example passes against FakeGuestAgent", () =>
    Effect.gen(function*() {
      const { commands, release } = yield* guestAgentTest
      expect(release).toBe("6.1.0-test")
      expect(commands).toContain("guest-exec")
      expect(commands).toContain("guest-exec-status")
    }))
})
