import * as fs from "node:fs"

// `conary --help` is the same document for every run of a build, and laying
// it out costs as much as the rest of the start-up (@effect/printer runs an
// effect per possible line break). The first run keeps it beside the bundle,
// as its code cache is (bin/conary.js); later runs print it from there.

/** The build's id (scripts/build.mjs); undefined when run from the sources. */
declare const CONARY_BUILD: string

const file = new URL("./conary-help.txt", import.meta.url)
const build = typeof CONARY_BUILD === "string" ? CONARY_BUILD : undefined

/** Whether this command line asks for the top-level help and nothing else. */
export const topLevelHelp = (args: ReadonlyArray<string>): boolean => build !== undefined && args.length === 1 && (args[0] === "--help" || args[0] === "-h")

/** The help this build printed before, as it was printed (ANSI styles and all), if it is kept. */
export const keptHelp = (): string | undefined => {
  try {
    const text = fs.readFileSync(file, "utf8")
    const eol = text.indexOf("\n")
    return text.slice(0, eol) === build ? text.slice(eol + 1) : undefined
  } catch {
    return undefined
  }
}

/** Keeps the help for the next run; where the bundle's directory cannot be written, the next run renders it again. */
export const keepHelp = (text: string): void => {
  const tmp = new URL(`./conary-help.txt.${process.pid}.tmp`, import.meta.url)
  try {
    fs.writeFileSync(tmp, `${build}\n${text}`)
    fs.renameSync(tmp, file)
  } catch {
    fs.rmSync(tmp, { force: true })
  }
}
