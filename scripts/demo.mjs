// The two-minute tour, for real: builds sample troves, then inits a temporary
// root, adds desired rows, plans, applies, updates and shows history.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const bin = path.resolve(import.meta.dirname, "../bin/conary.js")
const base = fs.mkdtempSync(path.join(os.tmpdir(), "conary-demo-"))
const root = path.join(base, "root")
const repo = path.join(base, "repo")
fs.mkdirSync(root)
fs.mkdirSync(repo)

const run = (...args) => {
  console.log(`\n$ conary ${args.join(" ")}`)
  try {
    process.stdout.write(execFileSync(process.execPath, [bin, ...args], { encoding: "utf8", env: { ...process.env, CONARY_ROOT: root } }))
  } catch (e) {
    process.stdout.write(e.stdout ?? "")
    process.stdout.write(e.stderr ?? "")
    // plan --detailed-exitcode and verify say "changes" / "drift" with exit 2.
    if (e.status !== 2) throw e
    console.log(`(exit code ${e.status})`)
  }
}

const tree = (name, files) => {
  const dir = path.join(base, "src", name)
  for (const [rel, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true })
    fs.writeFileSync(path.join(dir, rel), content, { mode: rel.includes("/bin/") ? 0o755 : 0o644 })
  }
  return dir
}

console.log(`Demo root: ${root}  (CONARY_ROOT is set for every command below)`)
run("trove", "build", tree("greet-1", {
  "usr/bin/greet": "#!/bin/sh\necho \"$(cat /etc/greet.conf)\"\n",
  "etc/greet.conf": "hello\n",
  "usr/share/doc/greet/README": "greet says hello\n",
}), "--name", "greet", "--trove-version", "1.0-1-1", "--requires", "libtext (>= 2.0)", "--out", path.join(repo, "greet-1.0.ctrv"))
run("trove", "build", tree("greet-2", {
  "usr/bin/greet": "#!/bin/sh\necho \"$(cat /etc/greet.conf), world\"\n",
  "etc/greet.conf": "hello\n",
  "usr/share/doc/greet/README": "greet says hello\n",
}), "--name", "greet", "--trove-version", "1.1-1-1", "--requires", "libtext (>= 2.0)", "--out", path.join(repo, "greet-1.1.ctrv"))
run("trove", "build", tree("libtext", { "usr/lib/libtext.so.2": "library\n" }), "--name", "libtext", "--trove-version", "2.3-1-1", "--out", path.join(repo, "libtext-2.3.ctrv"))

run("init")
run("source", "add", "demo", repo)
run("source", "sync")
run("desired", "add", "greet=1.0")
run("plan", "--detailed-exitcode")
run("apply")
run("plan")
run("list")
run("desired", "add", "greet")
run("plan")
run("apply")
run("verify")
console.log("\n(someone edits a file by hand)")
fs.appendFileSync(path.join(root, "usr/bin/greet"), "# local hack\n")
run("verify")
run("plan")
run("apply")
run("verify")
run("show", "greet", "--files")
run("history")
console.log(`\nThe root now holds:`)
for (const f of fs.readdirSync(root, { recursive: true }).sort()) if (!String(f).startsWith("var")) console.log(`  /${f}`)
fs.rmSync(base, { recursive: true, force: true })
