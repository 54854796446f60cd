/**
 * A path inside a package as given (`usr/bin/x`, `./usr/bin/x`), made absolute
 * inside the root (`/usr/bin/x`); undefined when it is absolute, empty, or
 * climbs with `..`. A module of its own: every format's reader checks paths
 * with it, and none should load another format's code to do so.
 */
export const rootedPath = (p: string): string | undefined => {
  if (p.startsWith("/") || p.includes("\0")) return undefined
  const parts = p.split("/").filter((s) => s !== "" && s !== ".")
  if (parts.length === 0 || parts.some((s) => s === "..")) return undefined
  return "/" + parts.join("/")
}
