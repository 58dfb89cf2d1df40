/**
 * The echo guest's boot sector (source: `src/testing/echo-guest.asm`), here
 * because the library boots it too: `Machine.kvmRuns` decides whether KVM
 * runs guests from whether this one prints its banner.
 */

/** nasm's output for `echo-guest.asm`, without the zero padding and the boot signature. */
const CODE =
  "fa31c08ed88ed0bc007cfcbe5c7ce84000bafd03eca80174fbbaf803ec3c7174123c667415e81a003c0d75e5b00ae81100ebdeb001e6f4f4ebf9be6f7ce81100ebf850bafd03eca82074fb58baf803eec3ac84c07405e8e9ffebf6c34543484f2047554553542052454144590d0a00464c4f4f4420303132333435363738396162636465666768696a6b6c6d6e6f707172737475767778797a0d0a"

/** What the guest prints once it runs. */
export const BANNER = "ECHO GUEST READY"

/** A 512-byte boot sector: `code` (hex), zero padding, the boot signature. */
export const bootSector = (code: string): Uint8Array => {
  const sector = new Uint8Array(512)
  sector.set(Buffer.from(code, "hex"))
  sector[510] = 0x55
  sector[511] = 0xaa
  return sector
}

/** The guest as a 512-byte raw disk image. */
export const image = (): Uint8Array => bootSector(CODE)
