/**
 * A guest nobody has to download: a 512-byte boot sector (source in
 * `echo-guest.asm` beside this file) that prints `ECHO GUEST READY` on COM1
 * and echoes what it reads. Typing `q` makes it power QEMU off through
 * `isa-debug-exit` (exit code 3); typing `f` makes it flood COM1 forever.
 *
 * @module
 */
import { escapeOptionValue, type MachineConfig } from "../MachineConfig.js"

/** nasm's output for `echo-guest.asm`, without the zero padding and the boot signature. */
const CODE =
  "fa31c08ed88ed0bc007cfcbe5c7ce84000bafd03eca80174fbbaf803ec3c7174123c667415e81a003c0d75e5b00ae81100ebdeb001e6f4f4ebf9be6f7ce81100ebf850bafd03eca82074fb58baf803eec3ac84c07405e8e9ffebf6c34543484f2047554553542052454144590d0a00464c4f4f4420303132333435363738396162636465666768696a6b6c6d6e6f707172737475767778797a0d0a"

/** What the guest prints once it runs. */
export const BANNER = "ECHO GUEST READY"

/** The exit code QEMU reports after the guest is sent `q`. */
export const POWER_OFF_EXIT_CODE = 3

/** The guest as a 512-byte raw disk image. */
export const image = (): Uint8Array => {
  const sector = new Uint8Array(512)
  sector.set(Buffer.from(CODE, "hex"))
  sector[510] = 0x55
  sector[511] = 0xaa
  return sector
}

/** A machine that boots the image at `imagePath` with its console attached. */
export const machineConfig = (imagePath: string, extra: MachineConfig = {}): MachineConfig => ({
  machineType: "pc,graphics=off",
  args: [
    "-nic", "none", "-m", "16",
    "-drive", `file=${escapeOptionValue(imagePath)},format=raw,if=ide`,
    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"
  ],
  console: {},
  ...extra
})
