import * as fs from "node:fs"
import type * as http from "node:http"
import type * as https from "node:https"
import type * as tls from "node:tls"
import { nodeHttp, nodeHttps, nodeTls } from "../builtin.js"
import type { IndexValidator } from "../db/sources.js"

// HTTP GET for repositories, assuming the server may be hostile or broken:
// every request has a connect and an idle timeout, every body a byte limit,
// redirects are few and stay http(s), and transient failures (no answer,
// 5xx, 429) are retried a bounded number of times, honouring Retry-After.

/** Seconds a connection may take to open, or stay silent; also the longest Retry-After honoured. */
export const httpTimeoutMs = (): number => {
  const s = Number(process.env.CONARY_HTTP_TIMEOUT)
  return Number.isFinite(s) && s > 0 ? s * 1000 : 30_000
}

const ATTEMPTS = 4
const MAX_REDIRECTS = 5

/** A failure of one URL; `transient` ones are worth another attempt. */
export class HttpFailure extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly retryAfterMs?: number,
  ) {
    super(message)
  }
}

export interface Response {
  readonly status: number
  /** where the redirects (if any) led */
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: http.IncomingMessage
}

const seconds = (ms: number) => `${+(ms / 1000).toFixed(3)} s`

const describe = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message

/** Retry-After as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
const retryAfterMs = (value: string | undefined, now = Date.now()): number | undefined => {
  if (value === undefined) return undefined
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** The system's CA bundle, as OpenSSL tools (apt, curl) find it: SSL_CERT_FILE, else Debian's. */
const SYSTEM_CAS = "/etc/ssl/certs/ca-certificates.crt"

const certificatesIn = (file: string | undefined): string[] => {
  if (!file) return []
  try {
    return fs.readFileSync(file, "utf8").match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []
  } catch {
    return [] // no bundle there
  }
}

let trusted: tls.SecureContext | undefined
/**
 * What https trusts: Node's own roots, the system's CA bundle (where a fleet
 * installs its own CA, with update-ca-certificates; or SSL_CERT_FILE) and
 * NODE_EXTRA_CA_CERTS. Made once a process.
 */
const secureContext = (): tls.SecureContext =>
  (trusted ??= nodeTls().createSecureContext({
    ca: [...nodeTls().rootCertificates, ...certificatesIn(process.env.SSL_CERT_FILE || SYSTEM_CAS), ...certificatesIn(process.env.NODE_EXTRA_CA_CERTS)],
  }))

/** Errors of certificate verification: no retry helps, and the message says what to do. */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/

const failureOf = (url: URL, e: unknown): HttpFailure => {
  if (e instanceof HttpFailure) return e
  const code = describe(e)
  if (url.protocol === "https:" && CERT_ERROR.test(code))
    return new HttpFailure(`${url}: the server's certificate is not trusted (${code}); add its CA to the system's bundle (update-ca-certificates) or to NODE_EXTRA_CA_CERTS`, false)
  return new HttpFailure(`cannot reach ${url} (${code})`, true)
}

/** One request, without following redirects; timeouts cover connecting, the headers and the body. */
const requestOnce = (url: URL, headers: Record<string, string>, timeout: number): Promise<http.IncomingMessage> =>
  new Promise((resolve, reject) => {
    let response: http.IncomingMessage | undefined
    const onResponse = (res: http.IncomingMessage) => resolve((response = res))
    const req =
      url.protocol === "https:"
        ? nodeHttps().get(url, { headers, timeout, secureContext: secureContext() } as https.RequestOptions, onResponse)
        : nodeHttp().get(url, { headers, timeout }, onResponse)
    req.on("timeout", () => {
      const silent = req.socket?.connecting !== false ? `cannot connect to ${url} within ${seconds(timeout)}` : `${url} sent nothing for ${seconds(timeout)}`
      const failure = new HttpFailure(silent, true)
      // The body's reader sees this failure, not the reset that follows it.
      response?.destroy(failure)
      req.destroy(failure)
    })
    req.on("error", (e) => reject(failureOf(url, e)))
  })

/**
 * GET with at most 5 redirects, each to http(s). Transient statuses (5xx,
 * 429) throw a transient HttpFailure carrying Retry-After; other statuses are
 * the caller's to judge. The body must be consumed (readBody) or destroyed.
 */
export const get = async (location: string, headers: Record<string, string> = {}): Promise<Response> => {
  const timeout = httpTimeoutMs()
  let url = new URL(location)
  for (let hops = 0; ; hops++) {
    const res = await requestOnce(url, headers, timeout)
    const status = res.statusCode ?? 0
    if (status >= 300 && status < 400 && status !== 304 && res.headers.location !== undefined) {
      res.destroy()
      if (hops >= MAX_REDIRECTS) throw new HttpFailure(`${location}: more than ${MAX_REDIRECTS} redirects`, false)
      const next = new URL(res.headers.location, url)
      if (next.protocol !== "http:" && next.protocol !== "https:")
        throw new HttpFailure(`${url} redirects to ${next.protocol} (only http and https are followed)`, false)
      // What came over TLS does not continue in clear text (a downgrade).
      if (url.protocol === "https:" && next.protocol === "http:") throw new HttpFailure(`${url} redirects to ${next} (from https to http: refused)`, false)
      url = next
      continue
    }
    if (status >= 500 || status === 429) {
      res.destroy()
      const wait = status === 429 || status === 503 ? retryAfterMs(res.headers["retry-after"]) : undefined
      throw new HttpFailure(`${url} answered ${status}`, true, wait)
    }
    return { status, url: url.toString(), headers: res.headers, body: res }
  }
}

/**
 * Reads a body chunk by chunk into `onChunk`, refusing more than `maxBytes`
 * (named by `what`). A body that stalls fails by the request's idle timeout;
 * one that breaks off is a transient failure.
 */
export const readBody = async (res: Response, maxBytes: number, what: string, onChunk: (chunk: Buffer) => void): Promise<void> => {
  const declared = Number(res.headers["content-length"])
  if (Number.isFinite(declared) && declared > maxBytes) {
    res.body.destroy()
    throw new HttpFailure(`${res.url} announces ${declared} bytes, more than the ${maxBytes} bytes ${what}`, false)
  }
  let got = 0
  let receiving = true
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      got += chunk.length
      if (got > maxBytes) throw new HttpFailure(`${res.url} sent more than the ${maxBytes} bytes ${what}`, false)
      receiving = false
      onChunk(chunk)
      receiving = true
    }
  } catch (e) {
    res.body.destroy()
    // What the caller's onChunk threw (a full disk) is its own; only the network's failures are ours.
    if (e instanceof HttpFailure || !receiving) throw e
    throw new HttpFailure(`download of ${res.url} broke off (${describe(e)})`, true)
  }
  // A connection closed early without an error still leaves the message incomplete.
  if (!res.body.complete)
    throw new HttpFailure(`download of ${res.url} broke off after ${got} bytes`, true)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Runs `attempt` up to 4 times while it fails transiently: after a
 * Retry-After (capped at the timeout) when the server gave one, otherwise
 * after a backoff of 0.2, 0.4, 0.8 s.
 */
export const retrying = async <A>(attempt: () => Promise<A>): Promise<A> => {
  for (let n = 1; ; n++) {
    try {
      return await attempt()
    } catch (e) {
      if (!(e instanceof HttpFailure) || !e.transient || n >= ATTEMPTS) throw e
      await sleep(e.retryAfterMs !== undefined ? Math.min(e.retryAfterMs, httpTimeoutMs()) : 100 * 2 ** n)
    }
  }
}

/** What the last accepted copy of a document carried, for a conditional GET. */
export type Validator = IndexValidator

export type Document =
  | { readonly status: "ok"; readonly body: Buffer; readonly url: string; readonly validator: Validator }
  | { readonly status: "unchanged" }
  | { readonly status: "missing" }

/**
 * A whole document of at most `maxBytes`, retried. With the validator of the
 * copy already held (from the same URL), an unchanged document is not sent
 * again (304).
 */
export const getDocument = (url: string, maxBytes: number, known?: Validator | null): Promise<Document> =>
  retrying(async () => {
    const headers: Record<string, string> = {}
    if (known?.url === url) {
      if (known.etag) headers["if-none-match"] = known.etag
      if (known.lastModified) headers["if-modified-since"] = known.lastModified
    }
    const res = await get(url, headers)
    if (res.status === 304 && known?.url === url) {
      res.body.resume()
      return { status: "unchanged" }
    }
    if (res.status === 404 || res.status === 410) {
      res.body.resume()
      return { status: "missing" }
    }
    if (res.status !== 200) {
      res.body.destroy()
      throw new HttpFailure(`${res.url} answered ${res.status}`, false)
    }
    const chunks: Buffer[] = []
    await readBody(res, maxBytes, "allowed for it", (c) => chunks.push(c))
    const header = (name: string) => {
      const v = res.headers[name]
      return typeof v === "string" ? v : null
    }
    const lastModified = header("last-modified")
    // Validators of a copy served in the second it last changed are not kept: a change later in that second can
    // carry the same ones (nginx's ETag is the mtime in seconds and the size), and would be answered 304.
    // RFC 9110 8.8.2.2: Last-Modified is a strong validator only at least a second before Date.
    const settled = lastModified === null || Date.parse(lastModified) <= Date.parse(header("date") ?? "") - 1000
    const validator = settled ? { url, etag: header("etag"), lastModified } : { url, etag: null, lastModified: null }
    return { status: "ok", body: Buffer.concat(chunks), url: res.url, validator }
  })
