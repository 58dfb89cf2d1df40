/**
 * docs/guest.md's examples, run as a user would (`npx tsx examples/…`)
 * against the Linux test guest: compiled is not enough (one of them once
 * waited forever on an agent the guest never started).
 */
import { expect, it } from "@effect/vitest"
import { describeLinux, runExample } from "../helpers.js"

describeLinux("docs/guest.md examples on the Linux guest", () => {
  it("guest-shell.ts: exit code, output, succeed, interrupt", async () => {
    const { code, stderr, stdout } = await runExample("examples/guest-shell.ts", 120_000)
    expect(stderr).toBe("")
    expect(code).toBe(0)
    expect(stdout).toMatch(/^exit 1:\n6\.1\.\S+-cloud-amd64\nls: \/no\/such: No such file or directory\n/)
    expect(stdout).toMatch(/\n\d+ mounts\n/)
    expect(stdout).toContain('ShellInterrupted: "sleep 600" was interrupted')
  }, 130_000)

  it("guest-agent.ts: osInfo, exec, a file both ways, the guest's clock, shutdown", async () => {
    const { code, stderr, stdout } = await runExample("examples/guest-agent.ts", 120_000)
    expect(stderr).toBe("")
    expect(code).toBe(0)
    expect(stdout).toContain("'kernel-release': '6.1.")
    expect(stdout).toMatch(/\n0 Linux guest 6\.1\.\S+ .* x86_64 GNU\/Linux\n/)
    expect(stdout).toContain("hello from the host\n")
    expect(stdout).toMatch(/guest clock: \d{4}-\d\d-\d\dT/)
  }, 130_000)
})
