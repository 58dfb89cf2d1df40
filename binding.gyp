{
  "targets": [
    {
      "target_name": "qemu_machine_native",
      "sources": ["native/scm_rights.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
