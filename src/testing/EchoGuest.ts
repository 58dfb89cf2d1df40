/**
 * A guest nobody has to download: a 512-byte boot sector (source in
 * `echo-guest.asm` beside this file) that prints `ECHO GUEST READY` on COM1
 * and echoes what it reads. Typing `q` makes it power QEMU off through
 * `isa-debug-exit` (exit code 3); typing `f` makes it flood COM1 forever.
 *
 * `keyboardImage` is a second one, for keyboard and screenshot tests.
 *
 * @module
 */
import * as EchoImage from "../internal/echoImage.js"
import { escapeOptionValue, type MachineConfig } from "../MachineConfig.js"

/** What the guest prints once it runs. */
export const BANNER = EchoImage.BANNER

/** The exit code QEMU reports after the guest is sent `q`. */
export const POWER_OFF_EXIT_CODE = 3

/** The guest as a 512-byte raw disk image. */
export const image = (): Uint8Array => EchoImage.image()

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

/** nasm's output for `keyboard-guest.asm`. */
const KEYBOARD_CODE = "31c08ed8be1c7cbaf803ac84c07403eeebf8b400cd16baf803eeebf64b4559424f4152442047554553542052454144590d0a00"

/** What the keyboard guest prints once it reads keys. */
export const KEYBOARD_BANNER = "KEYBOARD GUEST READY"

/**
 * A second boot sector for keyboard and display tests: it prints
 * `KEYBOARD GUEST READY` on COM1, then the character of every key the BIOS
 * reads from the PS/2 keyboard (shift applied), so `sendKeys("Hi!")` shows as
 * `Hi!` on the console.
 */
export const keyboardImage = (): Uint8Array => EchoImage.bootSector(KEYBOARD_CODE)

/** A machine that boots the keyboard image, with its console and a display (`-vga std`) for screenshots. */
export const keyboardMachineConfig = (imagePath: string, extra: MachineConfig = {}): MachineConfig => ({
  ...machineConfig(imagePath),
  // Not graphics=off: SeaBIOS's serial console would sit between the keyboard and the guest.
  machineType: "pc",
  vga: "std",
  ...extra
})
