import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    setupFiles: ["test/setup-yield.ts", "test/setup-file-ops.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Most tests wait on a CLI subprocess: two test files at a time keep both
    // cores busy (vitest's default here would be one).
    maxWorkers: 2,
    minWorkers: 2,
  },
})
