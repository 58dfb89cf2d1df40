{
  "targets": [
    {
      "target_name": "qemu_machine_native",
      "sources": ["native/unix_socket.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
