; The keyboard guest: prints "KEYBOARD GUEST READY" on COM1, then writes the
; ASCII code of every key the BIOS reads (int 16h: the PS/2 keyboard, shift
; applied) to COM1. Build: nasm -f bin keyboard-guest.asm (EchoGuest.ts holds
; the bytes, so nothing needs nasm to run it).
bits 16
org 0x7c00
        xor ax, ax
        mov ds, ax
        mov si, banner
        mov dx, 0x3f8
print:  lodsb
        test al, al
        jz keys
        out dx, al
        jmp print
keys:   mov ah, 0
        int 0x16
        mov dx, 0x3f8
        out dx, al
        jmp keys
banner: db "KEYBOARD GUEST READY", 13, 10, 0
