import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { HASH_FILE } from "../src/store/hash-pool.js"
import { runHere } from "../src/worker-stream.js"
import { sha256, tempDir } from "./helpers.js"

// The drift scan lstats a path, then opens it by name to hash it. Whatever
// was swapped in between (the file, or a directory on its way) must not have
// its bytes vouch for the stat the scan keeps: hashFile, given that stat,
// hashes only the file it describes.
const hashFile = runHere<(p: string, seen?: fs.BigIntStats) => string | null>(`${HASH_FILE}\nconst run = hashFile`)

describe("hashFile", () => {
  it("hashes the file an lstat saw, and nothing swapped in at its path since", () => {
    const dir = tempDir()
    const file = path.join(dir, "a")
    fs.writeFileSync(file, "package's bytes\n")
    const seen = fs.lstatSync(file, { bigint: true })
    expect(hashFile(file, seen)).toBe(sha256("package's bytes\n"))
    expect(hashFile(file)).toBe(sha256("package's bytes\n"))

    // The file replaced by another after the lstat.
    fs.writeFileSync(path.join(dir, "other"), "someone else's\n")
    fs.renameSync(path.join(dir, "other"), file)
    expect(hashFile(file, seen)).toBeNull()
    // Without a stat to match, whatever is there is hashed.
    expect(hashFile(file)).toBe(sha256("someone else's\n"))
  })

  it("hashes nothing when a directory on the way was swapped after the lstat", () => {
    const dir = tempDir()
    for (const [d, text] of [["etc", "clean\n"], ["swap", "drifted\n"]] as const) {
      fs.mkdirSync(path.join(dir, d))
      fs.writeFileSync(path.join(dir, d, "conf"), text)
    }
    const conf = path.join(dir, "etc/conf")
    const seen = fs.lstatSync(conf, { bigint: true })
    fs.renameSync(path.join(dir, "etc"), path.join(dir, "held"))
    fs.renameSync(path.join(dir, "swap"), path.join(dir, "etc"))
    expect(hashFile(conf, seen)).toBeNull()
  })
})
