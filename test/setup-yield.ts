import { afterEach } from "vitest"

// Most end-to-end tests run the CLI synchronously. Vitest's worker talks to
// its main process over a channel whose replies are read only when the event
// loop polls; a file of synchronous tests that runs past 60 s never polls, and
// the worker then fails with `Timeout calling "onTaskUpdate"`. A short wait
// after each test lets the loop poll and the replies land.
afterEach(() => new Promise<void>((resolve) => setTimeout(resolve, 5)))
