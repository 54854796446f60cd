import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { REPO, buildTrove, conary, mustSkip, ok, setupRoot } from "./helpers.js"

const BIN = path.join(REPO, "bin", "conary.js")
const ESC = "\x1b["

/** Runs the CLI with stdout on a terminal (a pty from script(1)); returns what the terminal got. */
const onTerminal = (args: string[], env: Record<string, string> = {}) => {
  const command = ["env", ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, BIN, ...args].join(" ")
  const r = spawnSync("script", ["-qec", command, "/dev/null"], { encoding: "utf8", env: { ...process.env, TERM: "xterm", NO_COLOR: "" } })
  return r.stdout
}

/** Runs the CLI with stdout a pipe whose reader has gone (`| head` after its line). */
const closedPipe = (args: string[]): Promise<{ code: number | null; stderr: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    child.stdout.destroy()
    let stderr = ""
    child.stderr.on("data", (d) => (stderr += d))
    child.on("close", (code) => resolve({ code, stderr }))
  })

const FIXTURES = path.join(import.meta.dirname, "fixtures", "debs")

describe("the CLI in pipes, scripts and terminals", () => {
  it("colors help only on a terminal without NO_COLOR or TERM=dumb", () => {
    expect(ok(["--help"])).not.toContain(ESC)
    expect(ok(["desired", "--help"], { env: { NO_COLOR: "1" } })).not.toContain(ESC)
    expect(onTerminal(["--help"])).toContain(ESC)
    expect(onTerminal(["--help"], { NO_COLOR: "1" })).not.toContain(ESC)
    expect(onTerminal(["--help"], { TERM: "dumb" })).not.toContain(ESC)
    expect(onTerminal(["--help"], { NO_COLOR: "1" })).toContain("USAGE")
  })

  it("ends quietly when the reader closes the pipe, with the exit code it would have had", async () => {
    const { root, repo, r } = setupRoot()
    const tree: Record<string, string> = {}
    for (let i = 0; i < 300; i++) tree[`usr/share/many/f${i}`] = `${i}\n`
    buildTrove(repo, "many", "1.0-1-1", tree)
    ok(["source", "sync", ...r])
    ok(["desired", "add", "many", ...r])
    ok(["apply", ...r])
    for (let i = 0; i < 300; i++) fs.appendFileSync(path.join(root, `usr/share/many/f${i}`), "drift\n")
    expect(await closedPipe(["verify", ...r])).toEqual({ code: 2, stderr: "" })

    fs.cpSync(path.join(FIXTURES, "nano_7.2-1+deb12u1_amd64.deb"), path.join(repo, "nano.deb"))
    ok(["source", "sync", ...r])
    expect(await closedPipe(["show", "nano", "--scripts", ...r])).toEqual({ code: 0, stderr: "" })
  })

  it("gives a reader slower than conary a JSON document larger than a pipe holds whole, and stops for one gone midway", async () => {
    // 4,000 file operations: ~1.4 MB of plan, past what conary lets stdout hold unwritten (1 MiB) before it waits for the reader.
    const { repo, r } = setupRoot()
    const tree: Record<string, string> = {}
    for (let i = 0; i < 4000; i++) tree[`usr/share/wide/f${i}`] = `${i}\n`
    buildTrove(repo, "wide", "1.0-1-1", tree)
    ok(["source", "sync", ...r])
    ok(["desired", "add", "wide", ...r])
    const whole = spawnSync(process.execPath, [BIN, "plan", "--json", ...r], { encoding: "utf8", maxBuffer: 1 << 30 }).stdout
    expect(whole.length).toBeGreaterThan(1.25 * 2 ** 20)
    expect(JSON.parse(whole).files.length).toBeGreaterThan(4000)
    const run = (args: string[], reader: (out: NodeJS.ReadableStream, done: () => void) => void) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, ...args, ...r], { stdio: ["ignore", "pipe", "pipe"] })
        let stdout = ""
        let stderr = ""
        child.stderr.on("data", (d) => (stderr += d))
        reader(child.stdout, () => child.stdout.destroy())
        child.stdout.on("data", (d) => (stdout += d))
        child.on("close", (code) => resolve({ code, stdout, stderr }))
      })
    // A reader that starts late: what conary waited with comes whole and in order.
    const late = await run(["plan", "--json"], (out) => {
      out.pause()
      setTimeout(() => out.resume(), 1000)
    })
    expect(late).toEqual({ code: 0, stdout: whole, stderr: "" })
    // One that takes a little and goes (`| head -c`): conary ends quietly, as it would have.
    const gone = await run(["plan", "--json"], (out, done) => out.once("data", done))
    expect(gone.code).toBe(0)
    expect(gone.stderr).toBe("")
    expect(whole.startsWith(gone.stdout)).toBe(true)
  })

  it.skipIf(mustSkip(fs.existsSync("/dev/full"), "a full disk under stdout or stderr", "no /dev/full", "a Linux /dev"))(
    "ends no command midway when stdout or stderr cannot be written (a full disk): lost output is said and exits 1, a lost stderr line is dropped",
    () => {
      const { root, repo, r } = setupRoot()
      buildTrove(repo, "hello", "1.0-1-1", { "usr/bin/hello": "hi" })
      ok(["source", "sync", ...r])
      ok(["desired", "add", "hello", ...r])
      const full = fs.openSync("/dev/full", "w")
      const run = (args: string[], stdio: ["ignore", number | "pipe", number | "pipe"], env: Record<string, string> = {}) => {
        const res = spawnSync(process.execPath, [BIN, ...args, ...r], { encoding: "utf8", stdio, env: { ...process.env, ...env } })
        return { code: res.status, stdout: res.stdout, stderr: res.stderr }
      }
      try {
        // verify would exit 2 (drift): its report is lost, and that is the error
        ok(["apply", ...r])
        fs.writeFileSync(path.join(root, "usr/bin/hello"), "changed")
        for (const args of [["list"], ["verify"]])
          expect(run(args, ["ignore", full, "pipe"])).toEqual({ code: 1, stdout: null, stderr: "conary: cannot write the output: no space left on device (disk full)\n" })
        // An apply whose recovery line (stderr) cannot be written still applies.
        ok(["desired", "remove", "hello", ...r])
        expect(conary(["apply", ...r], { env: { CONARY_TEST_CRASH_AT: "staged" } }).code).not.toBe(0)
        const apply = run(["apply"], ["ignore", "pipe", full])
        expect(apply).toEqual({ code: 0, stdout: expect.stringContaining("Applied generation"), stderr: null })
        expect(fs.existsSync(path.join(root, "usr/bin/hello"))).toBe(false)
        expect(ok(["list", ...r])).not.toContain("hello")
      } finally {
        fs.closeSync(full)
      }
    },
  )

  it("says what was wrong with the command line as conary does, suggesting the command or option meant", () => {
    const line = (args: string[]) => {
      const res = conary(args)
      expect(res.code).toBe(1)
      expect(res.stderr.split("\n").filter((l) => l !== "")).toHaveLength(1)
      return res.stderr.trim()
    }
    expect(line(["desired", "ad", "x"])).toBe("conary: unknown command 'desired ad'; did you mean 'desired add'?")
    expect(line(["flavor", "shwo"])).toBe("conary: unknown command 'flavor shwo'; did you mean 'flavor show'?")
    expect(line(["plna"])).toBe("conary: unknown command 'plna'; did you mean 'plan'?")
    expect(line(["plan", "--rot", "/x"])).toBe("conary: plan: unknown option '--rot'; did you mean '--root'?")
    expect(line(["desired", "list", "--jsn"])).toBe("conary: desired list: unknown option '--jsn'; did you mean '--json'?")
    expect(line(["plan", "--lock-timeout", "soon"])).toMatch(/^conary: plan: 'soon' is not a float$/)
    expect(line(["plan", "--lock-timeout", "-1"])).toMatch(/^conary: plan: --lock-timeout takes seconds, 0 or more$/)
    expect(line(["desired", "add"])).toBe("conary: desired add: Missing argument <SPEC>")
    // Before variadic arguments @effect/cli would take an unknown option for one, and lose the options after it.
    expect(line(["desired", "add", "--rot", "/x", "foo", "--root", "/nonexistent"])).toBe(
      "conary: desired add: unknown option '--rot'; did you mean '--root'?",
    )
    expect(line(["desired", "--bogus"])).toBe("conary: desired: unknown option '--bogus'; first a command: add, export, list, remove, set")
    expect(line(["plan", "--root"])).toBe("conary: plan: option --root needs a value")
    // @effect/cli checks this one on disk (the platform services load only for such commands).
    expect(line(["trove", "build", "/nonexistent/dir", "--name", "x", "--trove-version", "1", "--out", "/nonexistent/x"])).toBe(
      "conary: trove build: Path '/nonexistent/dir' must exist",
    )
  })

  it("prints an error document on stdout under --json, with the same exit code", () => {
    const { r } = setupRoot()
    const missing = conary(["list", "--json", "--root", "/nonexistent/conary-root"])
    expect(missing.code).toBe(1)
    expect(JSON.parse(missing.stdout)).toEqual({
      formatVersion: 1,
      error: { type: "RootError", message: "root /nonexistent/conary-root: does not exist" },
    })
    expect(missing.stderr.trim()).toBe("conary: root /nonexistent/conary-root: does not exist")
    const usage = conary(["plan", "--json", "--rot", "/x"])
    expect(usage.code).toBe(1)
    expect(JSON.parse(usage.stdout).error).toEqual({ type: "UsageError", message: "plan: unknown option '--rot'; did you mean '--root'?" })
    ok(["desired", "add", "ghost", ...r])
    const plan = conary(["plan", "--json", ...r])
    expect(plan.code).toBe(1)
    expect(JSON.parse(plan.stdout).error.type).toBe("UnresolvableError")
    expect(conary(["plan", ...r]).stdout).toBe("")
  })

  it("shows an unresolvable plan one item a line, then a summary", () => {
    const { r } = setupRoot()
    ok(["desired", "add", "ghost", "phantom", "spook", ...r])
    const res = conary(["plan", ...r])
    expect(res.code).toBe(1)
    expect(res.stderr.trim().split("\n")).toEqual([
      "conary: unresolvable: ghost: no source provides it",
      "conary: unresolvable: phantom: no source provides it",
      "conary: unresolvable: spook: no source provides it",
      "conary: 3 unresolvable; nothing was planned",
    ])
  })

  it("refuses a desired document with the same trove twice, naming both entries", () => {
    const { r } = setupRoot()
    const doc = { formatVersion: 1, troves: [{ name: "a" }, { name: "b", flavor: "ssl,gtk" }, { name: "a", version: "2" }, { name: "b", flavor: "gtk,ssl" }] }
    const res = conary(["desired", "set", "--file", "-", ...r], { input: JSON.stringify(doc) })
    expect(res.code).toBe(1)
    expect(res.stderr.trim()).toBe(
      "conary: standard input: the same trove is desired twice: troves.0 and troves.2 (a), troves.1 and troves.3 (b[gtk,ssl])",
    )
    expect(ok(["desired", "list", ...r])).toBe("Nothing is desired.\n")
  })

  it("waits for a slow non-blocking standard input without spinning on EAGAIN", { timeout: 90_000 }, async () => {
    for (const tool of ["strace", "python3"])
      if (spawnSync(tool, ["-V"]).status !== 0) return console.warn(`*** SKIPPED: ${tool} is missing (scripts/test-tools.sh installs it)`)
    const { root, r } = setupRoot()
    // A FIFO with a writer: conary's read of it says EAGAIN until the test writes. Node's spawn makes a
    // child's standard input blocking, so python sets O_NONBLOCK again before it runs strace and conary.
    const fifo = path.join(root, "..", "stdin.fifo")
    spawnSync("mkfifo", [fifo])
    const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
    const writer = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK)
    const log = path.join(root, "..", "strace.log")
    const nonBlocking = "import fcntl, os, sys; fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_NONBLOCK); os.execvp(sys.argv[1], sys.argv[1:])"
    const child = spawn("python3", ["-c", nonBlocking, "strace", "-f", "-e", "trace=read", "-o", log, process.execPath, BIN, "desired", "set", "--file", "-", ...r], { stdio: [reader, "pipe", "pipe"] })
    fs.closeSync(reader)
    let stderr = ""
    child.stderr!.on("data", (d) => (stderr += d))
    // Once conary has met the empty input (start-up under strace is slow), it waits half a second more for it.
    const eagainLines = () => (fs.existsSync(log) ? fs.readFileSync(log, "utf8").split("\n").filter((l) => l.includes("EAGAIN")).length : 0)
    for (let waited = 0; eagainLines() === 0 && waited < 60_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50))
    await new Promise((resolve) => setTimeout(resolve, 500))
    fs.writeSync(writer, JSON.stringify({ formatVersion: 1, troves: [{ name: "slowly" }] }))
    fs.closeSync(writer)
    const code = await new Promise((resolve) => child.on("close", resolve))
    expect(code, stderr).toBe(0)
    expect(ok(["desired", "list", ...r])).toContain("slowly")
    // A spinning reader makes thousands of these in that half second; a waiting one about a dozen.
    expect(eagainLines()).toBeGreaterThan(0)
    expect(eagainLines()).toBeLessThan(200)
  })

  it("records a reason change at once: a dependency made desired is explicit in list, and back", () => {
    const { repo, r } = setupRoot()
    buildTrove(repo, "app", "1.0-1-1", { "usr/bin/app": "app" }, { requires: ["libfoo"] })
    buildTrove(repo, "libfoo", "1.0-1-1", { "usr/lib/libfoo.so.1": "lib" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app", ...r])
    ok(["apply", ...r])
    const reason = () => JSON.parse(ok(["list", "--json", ...r])).troves.find((t: { name: string }) => t.name === "libfoo").reason
    expect(reason()).toBe("dependency")
    ok(["desired", "add", "libfoo", ...r])
    expect(reason()).toBe("explicit")
    expect(ok(["plan", ...r])).toContain("No changes.")
    ok(["desired", "remove", "libfoo", ...r])
    expect(reason()).toBe("dependency")
    // A new version pin names the same trove: still explicit, though plan moves it to the other version.
    buildTrove(repo, "app", "2.0-1-1", { "usr/bin/app": "app 2" }, { requires: ["libfoo"] })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "app=2.0", ...r])
    const app = () => JSON.parse(ok(["list", "--json", ...r])).troves.find((t: { name: string }) => t.name === "app")
    expect(app()).toMatchObject({ version: "1.0-1-1", reason: "explicit" })
    ok(["apply", ...r])
    expect(app()).toMatchObject({ version: "2.0-1-1", reason: "explicit" })
  })

  it("refuses an empty root instead of managing this machine's /", () => {
    const before = fs.existsSync("/var/lib/conary")
    for (const cmd of [["init"], ["status"], ["desired", "add", "x"]]) {
      const res = conary([...cmd, "--root", ""])
      expect(res.code).toBe(1)
      expect(res.stderr).toBe("conary: root '': is empty; name a directory (--root / for this machine itself)\n")
    }
    expect(fs.existsSync("/var/lib/conary")).toBe(before)
  })

  it("prints names from outside as one line each: control characters escaped in listings and errors", () => {
    const { repo, root, r } = setupRoot()
    buildTrove(repo, "odd", "1.0-1-1", { "usr/share/odd/new\nline": "a", "usr/share/odd/\x1b[31mred\rmissing": "b" })
    ok(["source", "sync", ...r])
    ok(["desired", "add", "odd", ...r])
    ok(["apply", ...r])
    fs.writeFileSync(path.join(root, "usr/share/odd/new\nline"), "changed")
    fs.writeFileSync(path.join(root, "usr/share/odd/\x1b[31mred\rmissing"), "changed")
    const lines = conary(["verify", ...r]).stdout.split("\n")
    expect(lines).toContainEqual(expect.stringMatching(/ \/usr\/share\/odd\/new\\nline$/))
    expect(lines).toContainEqual(expect.stringMatching(/ \/usr\/share\/odd\/\\x1b\[31mred\\rmissing$/))
    for (const line of lines) expect(line).not.toMatch(/[\x00-\x08\x0b-\x1f]/)
    expect(ok(["show", "odd", "--files", ...r])).not.toMatch(/[\x1b\r]/)
    const bad = conary(["desired", "add", "evil\nconary: forged line", ...r])
    expect(bad.code).toBe(1)
    expect(bad.stderr.split("\n")).toHaveLength(2)
    expect(bad.stderr).toContain("evil\\nconary: forged line")
  })

  it("names the trove's version --trove-version, in --help and when given --version", () => {
    expect(ok(["trove", "build", "--help"])).toContain("--trove-version")
    const { base } = setupRoot()
    const out = path.join(base, "x.ctrv")
    const res = conary(["trove", "build", base, "--name", "x", "--version", "1.0", "--out", out])
    expect(res.code).toBe(1)
    expect(fs.existsSync(out)).toBe(false)
    expect(res.stderr.trim()).toBe("conary: trove build: the trove's version is given as --trove-version V (--version prints conary's)")
    expect(fs.readFileSync(path.join(REPO, "README.md"), "utf8")).not.toMatch(/trove build[^\n]*--version /)
  })
})
