import { createRequire } from "node:module"

// Built-in modules that cost milliseconds to load (crypto; child_process,
// which loads net and dgram; http, https and tls, ten together) are loaded at
// their first use by the modules every command imports: `list` neither hashes
// nor spawns, and `source sync` of a directory or `apply` from one downloads
// nothing.

const load = createRequire(import.meta.url)

/** A built-in module, loaded when first called for. */
const builtinOnDemand = <M>(id: string): (() => M) => {
  let loaded: M | undefined
  return () => (loaded ??= load(id) as M)
}

export const nodeCrypto = builtinOnDemand<typeof import("node:crypto")>("node:crypto")
export const childProcess = builtinOnDemand<typeof import("node:child_process")>("node:child_process")
export const nodeHttp = builtinOnDemand<typeof import("node:http")>("node:http")
export const nodeHttps = builtinOnDemand<typeof import("node:https")>("node:https")
export const nodeTls = builtinOnDemand<typeof import("node:tls")>("node:tls")
export const nodeV8 = builtinOnDemand<typeof import("node:v8")>("node:v8")
