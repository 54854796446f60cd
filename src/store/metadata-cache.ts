import * as fs from "node:fs"
import { sha256Of } from "../sha256.js"
import type { ContentStore } from "./store.js"

// Repository metadata objects (parts, manifests) through a store shared by
// several roots: each root's database keeps its own copy of what it read, but
// the host fetches each object once. Best effort, as a cache: sync and plan
// hold no lease on the store, so the gc of a root sharing it may delete a
// cached object at any time (nothing references one); then it is fetched.

let shared: ContentStore | undefined

/** Set by the CLI when the root's store is shared with other roots. */
export const shareMetadataThrough = (store: ContentStore | undefined): void => {
  shared = store
}

/** A metadata object from the shared store, if it is there whole and verified. */
export const cachedObject = (sha256: string, size: number): Buffer | undefined => {
  if (!shared) return undefined
  try {
    const bytes = fs.readFileSync(shared.pathOf(sha256))
    if (bytes.length === size && sha256Of(bytes) === sha256) return bytes
  } catch {
    // not there (or collected meanwhile): fetched instead
  }
  return undefined
}

/** Keeps a verified metadata object in the shared store for the other roots; a failure only costs them a download. */
export const keepObject = (bytes: Buffer, sha256: string): void => {
  try {
    shared?.putBuffer(bytes, sha256)
  } catch {
    // a full disk, or a gc emptying tmp/ meanwhile
  }
}
