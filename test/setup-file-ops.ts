import { expect } from "vitest"
import { FileOps } from "../src/model/file-ops.js"

// Two plans' file operations are equal when they list the same operations:
// FileOps keeps them in columns whose layout (a filtered or sorted view of a
// bigger table) is not what a test compares.
expect.addEqualityTesters([
  function fileOpsEqual(a: unknown, b: unknown, testers) {
    if (!(a instanceof FileOps) && !(b instanceof FileOps)) return undefined
    const list = (x: unknown) => (x instanceof FileOps ? x.toArray() : x)
    return this.equals(list(a), list(b), testers)
  },
])
