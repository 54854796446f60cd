import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"

// A real nginx on a loopback port, serving a directory, for tests and benches.

export interface Nginx {
  readonly url: string
  readonly root: string
  readonly accessLog: string
  stop(): Promise<void>
}

export const hasNginx = (): boolean => spawnSync("nginx", ["-v"]).status === 0

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
    server.on("error", reject)
  })

export interface NginxOptions {
  /** serve https with this certificate chain and key (PEM files) */
  readonly tls?: { readonly cert: string; readonly key: string }
  /** more directives for the server block (locations) */
  readonly server?: string
}

/** Starts nginx in the foreground serving `root`; logs each request as `METHOD PATH STATUS BYTES`. */
export const startNginx = async (dir: string, root: string, options: NginxOptions = {}): Promise<Nginx> => {
  const port = await freePort()
  const conf = path.join(dir, "nginx.conf")
  const accessLog = path.join(dir, "access.log")
  fs.mkdirSync(path.join(dir, "temp"), { recursive: true })
  fs.writeFileSync(
    conf,
    `user root;
worker_processes 2;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 256; }
http {
  default_type application/octet-stream;
  log_format bytes '$request_method $uri $status $body_bytes_sent';
  access_log ${accessLog} bytes;
  client_body_temp_path ${dir}/temp/body;
  proxy_temp_path ${dir}/temp/proxy;
  fastcgi_temp_path ${dir}/temp/fastcgi;
  uwsgi_temp_path ${dir}/temp/uwsgi;
  scgi_temp_path ${dir}/temp/scgi;
  server {
    listen 127.0.0.1:${port}${options.tls ? ` ssl;\n    ssl_certificate ${options.tls.cert};\n    ssl_certificate_key ${options.tls.key}` : ""};
    root ${root};
    ${options.server ?? ""}
  }
}
`,
  )
  const child: ChildProcess = spawn("nginx", ["-c", conf, "-p", dir], { stdio: "ignore" })
  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`
  // Up when the port answers (a TCP connect: no certificate to trust for that).
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) =>
      net.connect(port, "127.0.0.1").once("connect", function (this: net.Socket) {
        this.destroy()
        resolve(true)
      }).once("error", () => resolve(false)),
    )
    if (up) break
    await new Promise((r) => setTimeout(r, 50))
  }
  return {
    url,
    root,
    accessLog,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGTERM")
      }),
  }
}

/** Requests nginx logged so far: [method, path, status, bytes]. */
export const requests = (n: Nginx): Array<[string, string, number, number]> =>
  fs.existsSync(n.accessLog)
    ? fs
        .readFileSync(n.accessLog, "utf8")
        .trim()
        .split("\n")
        .filter((l) => l)
        .map((l) => {
          const [m, p, s, b] = l.split(" ")
          return [m!, p!, Number(s), Number(b)]
        })
    : []
