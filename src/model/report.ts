// One object through which long phases report progress (Yarn's Report). The
// CLI gives a progress bar on a TTY and a silent one otherwise.

export interface Report {
  start(phase: string, total: number): void
  tick(n?: number): void
  done(): void
}

export const silentReport: Report = {
  start: () => undefined,
  tick: () => undefined,
  done: () => undefined,
}
