import { createRequire } from "node:module"

// Built-in modules that cost milliseconds to load (crypto; child_process,
// which loads net and dgram) are loaded at their first use by the modules
// every command imports: `list` neither hashes nor spawns.

const load = createRequire(import.meta.url)

/** A built-in module, loaded when first called for. */
const builtinOnDemand = <M>(id: string): (() => M) => {
  let loaded: M | undefined
  return () => (loaded ??= load(id) as M)
}

export const nodeCrypto = builtinOnDemand<typeof import("node:crypto")>("node:crypto")
export const childProcess = builtinOnDemand<typeof import("node:child_process")>("node:child_process")
