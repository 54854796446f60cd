import { execFileSync } from "node:child_process"

export default function setup() {
  // The Debian tools the tests use (installed when missing and run as root;
  // otherwise a loud note of what will be skipped and how to enable it).
  execFileSync("sh", ["scripts/test-tools.sh"], { stdio: "inherit" })
  // End-to-end tests run the shipped bundle, so build it once first.
  execFileSync(process.execPath, ["scripts/build.mjs"], { stdio: "inherit" })
}
