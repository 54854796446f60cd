import type { SingleBar } from "cli-progress"
import { type Report, silentReport } from "../model/report.js"
import { stderrIsTerminal } from "./terminal.js"

/** A progress bar on stderr for long phases, only for a person at a terminal. */
export const progressReport = async (json: boolean): Promise<Report> => {
  if (json || !stderrIsTerminal()) return silentReport
  // Loaded only here: cli-progress loads node:readline, which costs any other run milliseconds.
  const { SingleBar } = await import("cli-progress")
  let bar: SingleBar | undefined
  return {
    start(phase, total) {
      // Short phases would only flicker.
      if (total < 200) return
      bar = new SingleBar({
        stream: process.stderr,
        format: `${phase.padEnd(10)} [{bar}] {percentage}% {value}/{total} {duration_formatted}`,
        hideCursor: true,
        clearOnComplete: true,
      })
      bar.start(total, 0)
    },
    tick(n = 1) {
      bar?.increment(n)
    },
    done() {
      bar?.stop()
      bar = undefined
    },
  }
}
