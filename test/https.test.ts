import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildTrove, conary, mustSkip, ok, setupRoot, tempDir } from "./helpers.js"
import { hasNginx, startNginx } from "./nginx.js"

// A repository over https: nginx with a certificate from a CA made here
// (openssl), trusted the way a fleet trusts its own CA (the system's bundle,
// or SSL_CERT_FILE naming one); an untrusted certificate and a redirect from
// https down to http are refused.

const hasOpenssl = (() => {
  try {
    execFileSync("openssl", ["version"])
    return true
  } catch {
    return false
  }
})()
const skip = mustSkip(hasNginx() && hasOpenssl, "repositories over https", "nginx or openssl is not installed", "sudo sh scripts/test-tools.sh")

/** A CA and a certificate it signs for 127.0.0.1. */
const makeCertificates = (dir: string) => {
  const f = (name: string) => path.join(dir, name)
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" })
  openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=conary test CA", "-keyout", f("ca.key"), "-out", f("ca.pem"))
  openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", f("server.key"), "-out", f("server.csr"))
  fs.writeFileSync(f("ext"), "subjectAltName = IP:127.0.0.1\n")
  openssl("x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", f("ext"), "-out", f("server.pem"))
  return { ca: f("ca.pem"), cert: f("server.pem"), key: f("server.key") }
}

describe("repositories over https", () => {
  it.skipIf(skip)("syncs, plans and applies with the CA trusted; refuses an untrusted certificate and a redirect to http", async () => {
    const work = tempDir()
    const certs = makeCertificates(work)
    const www = path.join(work, "www")
    const inputs = path.join(work, "inputs")
    fs.mkdirSync(inputs)
    buildTrove(inputs, "app", "1.0-1-1", { "usr/bin/app": "secure\n" })
    ok(["key", "generate", path.join(work, "k")])
    ok(["repo", "build", path.join(www, "repo"), inputs, "--sign", path.join(work, "k.key")])
    // A plain http server beside it, for the redirect to go down to.
    const plain = await startNginx(path.join(work, "plain"), www)
    const nginx = await startNginx(path.join(work, "nginx"), www, {
      tls: certs,
      server: `location /down/ { rewrite ^/down/(.*)$ ${plain.url}/repo/$1 redirect; }`,
    })
    const trusted = { SSL_CERT_FILE: certs.ca, CONARY_HTTP_TIMEOUT: "5" }
    try {
      const { root, r } = setupRoot()
      ok(["source", "add", "web", `${nginx.url}/repo`, "--trust", path.join(work, "k.pub"), ...r])
      ok(["desired", "add", "app", ...r])

      // Not trusted (only Node's roots and an empty system bundle): one line, at once (no retry helps), nothing synced.
      const refused = conary(["source", "sync", ...r], { env: { SSL_CERT_FILE: path.join(work, "none.pem") } })
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(
        new RegExp(
          `^conary: source web: fetching root/1\\.json: ${nginx.url}/repo/root/1\\.json: the server's certificate is not trusted \\([A-Z_]+\\); add its CA to the system's bundle \\(update-ca-certificates\\) or to NODE_EXTRA_CA_CERTS\n$`,
        ),
      )
      expect(JSON.parse(ok(["source", "list", "--json", ...r])).sources.find((s: { name: string }) => s.name === "web").syncedAt).toBe(null)

      // Trusted: sync, plan and apply over https.
      expect(ok(["source", "sync", ...r], { env: trusted })).toContain("web: 1 troves (1 new or changed, 0 gone)")
      expect(ok(["plan", ...r], { env: trusted })).toContain("+ app 1.0-1-1")
      ok(["apply", ...r], { env: trusted })
      expect(fs.readFileSync(path.join(root, "usr/bin/app"), "utf8")).toBe("secure\n")
      // NODE_EXTRA_CA_CERTS is trusted too.
      const other = setupRoot()
      ok(["source", "add", "web", `${nginx.url}/repo`, "--trust", path.join(work, "k.pub"), ...other.r])
      ok(["source", "sync", ...other.r], { env: { NODE_EXTRA_CA_CERTS: certs.ca, SSL_CERT_FILE: path.join(work, "none.pem") } })

      // A redirect from https to http: refused, naming both.
      ok(["source", "add", "down", `${nginx.url}/down`, "--trust", path.join(work, "k.pub"), ...r])
      const down = conary(["source", "sync", "down", ...r], { env: trusted })
      expect(down.code).toBe(1)
      expect(down.stderr).toBe(
        `conary: source down: fetching root/1.json: ${nginx.url}/down/root/1.json redirects to ${plain.url}/repo/root/1.json (from https to http: refused)\n`,
      )
    } finally {
      await nginx.stop()
      await plain.stop()
    }
  }, 120_000)
})
