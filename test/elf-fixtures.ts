import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

// Real ELF shared objects made with binutils (as, ld), 32- or 64-bit:
// libbar.so.2 defines the symbol version BAR_1; libfoo.so.1 needs libbar.so.2
// and its BAR_1 (DT_NEEDED and .gnu.version_r).

export const hasBinutils = ["as", "ld", "readelf"].every((t) => spawnSync(t, ["--version"]).status === 0)

const run = (cmd: string, args: string[], cwd: string) => {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8" })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`)
}

export const buildLibs = (dir: string, bits: 32 | 64): { bar: string; foo: string } => {
  const out = path.join(dir, `elf${bits}`)
  fs.mkdirSync(out, { recursive: true })
  const as = bits === 32 ? "--32" : "--64"
  const ld = bits === 32 ? "elf_i386" : "elf_x86_64"
  fs.writeFileSync(path.join(out, "bar.s"), ".globl bar\n.type bar,@function\nbar: ret\n")
  fs.writeFileSync(path.join(out, "bar.map"), "BAR_1 { global: bar; local: *; };\n")
  fs.writeFileSync(path.join(out, "foo.s"), ".globl foo\n.type foo,@function\nfoo: call bar@PLT\n ret\n")
  run("as", [as, "-o", "bar.o", "bar.s"], out)
  run("ld", ["-m", ld, "-shared", "-soname", "libbar.so.2", "--version-script", "bar.map", "-o", "libbar.so.2", "bar.o"], out)
  run("as", [as, "-o", "foo.o", "foo.s"], out)
  run("ld", ["-m", ld, "-shared", "-soname", "libfoo.so.1", "-o", "libfoo.so.1", "foo.o", "libbar.so.2"], out)
  return { bar: path.join(out, "libbar.so.2"), foo: path.join(out, "libfoo.so.1") }
}
